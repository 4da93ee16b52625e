"""Kafka plumbing the services share; it carries no event, schema or topic (those are `contracts/`').

- `rebond_kafka.security`: FastStream's SASL security object from a service's settings.
- `rebond_kafka.startup`: start a broker, retrying with backoff while Kafka is unreachable.
- `rebond_kafka.backoff`: the growing, capped, jittered delay every retry loop waits.
- `rebond_kafka.reconnect`: aiokafka's clients reconnect with that delay (a patch: aiokafka
  0.14 has no reconnect backoff), and tell each service's `KafkaLink` when Kafka is gone or back.
- `rebond_kafka.outage`: `KafkaLink` (an outage said once, summed up, ended; readiness and
  metrics read it) and the logging filter that condenses aiokafka's lines meanwhile.
- `rebond_kafka.records`: raw-bytes decoders and the arguments of a dead letter.
- `rebond_kafka.acl_plan`: who may do what on Kafka, derived from the topic registry (the local
  broker's ACLs and the Strimzi `KafkaUser`s both come from it).
- `rebond_kafka.provision`: the registry's topics (partitions, replicas, `min.insync.replicas`,
  retention), SCRAM users and ACLs made on a cluster, idempotently (`python -m
  rebond_kafka.provision`; the `provision` extra); `rebond_kafka.strimzi`: the same as Strimzi
  resources.
- `rebond_kafka.testing`: commit a consumer group at the current end of topics; a broker gone
  for this process's clients only (tests, bench).
"""
