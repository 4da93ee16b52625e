"""Logging, configured once per process by each service's `__main__`: every line (ours,
uvicorn's, aiokafka's) is JSON on standard output, and aiokafka's repeated lines during a Kafka
outage are condensed into the outage's own few lines (`rebond_kafka.outage`)."""

import logging
import sys

import structlog
from structlog.typing import Processor

from rebond_kafka.outage import LINKS, CondenseOutageLines, KafkaLinks

_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: str = "INFO", links: KafkaLinks = LINKS) -> None:
    """JSON lines on standard output at `level`; aiokafka's connectivity lines dropped while
    one of `links` (the process's) is down: the link says the outage once, then sums them up.
    The filter sits on the handler, so it sees aiokafka's stdlib records before they are
    formatted (a dropped line costs a few attribute reads, not a JSON rendering)."""
    structlog.configure(
        # filter_by_level first: a line below the level is dropped before the other
        # processors run (time stamp, context), not after, when the stdlib logger ignores it.
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(CondenseOutageLines(links))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Client libraries narrate every rebalance at INFO; keep their warnings and errors.
    for chatty in ("aiokafka", "faststream"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
