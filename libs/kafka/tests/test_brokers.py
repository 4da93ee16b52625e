from rebond_kafka.brokers import durable_broker


def test_a_durable_broker_waits_for_every_replica_and_writes_a_retried_send_once() -> None:
    """The producer of every service's broker is acks=all and idempotent, to the servers given."""
    broker = durable_broker(" a:9092 , b:9092", "rebond-test", request_timeout_ms=5000)
    kwargs = broker._connection_kwargs
    assert kwargs["acks"] == "all" and kwargs["enable_idempotence"] is True
    assert kwargs["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert kwargs["client_id"] == "rebond-test" and kwargs["request_timeout_ms"] == 5000
