"""Submissions this process just had acknowledged, until its consumer reads them back.

The status store learns of a submission from `questionnaires.completed` itself (the consumer),
so "received" shows exactly when Kafka holds it, written in batches off the request's path. In
the few milliseconds before that, the person may already be on the status page: this replica
remembers what it accepted, in memory, for them. Another replica may answer 404 in that window;
the portal's status page then says "unknown for the moment" and asks again at its next refresh.
"""

from collections import OrderedDict

from rebond_intake.timeline import Record


class RecentlyReceived:
    """A bounded memory of the last `capacity` submissions' "received" records."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._records: OrderedDict[str, Record] = OrderedDict()

    def note(self, record: Record) -> None:
        self._records[record.reference] = record
        self._records.move_to_end(record.reference)
        while len(self._records) > self._capacity:
            self._records.popitem(last=False)

    def get(self, reference: str) -> Record | None:
        return self._records.get(reference)
