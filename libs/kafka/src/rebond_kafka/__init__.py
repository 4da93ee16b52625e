"""Kafka plumbing the services share; it carries no event, schema or topic (those are `contracts/`').

- `rebond_kafka.security`: FastStream's SASL security object from a service's settings.
- `rebond_kafka.startup`: start a broker, retrying with backoff while Kafka is unreachable.
- `rebond_kafka.records`: raw-bytes decoders and the arguments of a dead letter.
- `rebond_kafka.acl_plan`: who may do what on Kafka, derived from the topic registry (the local
  broker's ACLs and the Strimzi `KafkaUser`s both come from it).
- `rebond_kafka.testing`: commit a consumer group at the current end of topics (tests, bench).
"""
