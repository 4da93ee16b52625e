"""How many examples the API fuzzing draws, for each operation and for events' stateful
sequences: all of them in `make test` (what CI runs), a quarter in `make check`, the inner
loop, which sets `REBOND_FUZZ=quick`.

The same properties run in both, on the same operations; the inner loop draws fewer cases of
each. Events' and intake's schemathesis modules were the largest share of `make check`'s CPU:
36 s of the 96 s its tests took in their own processes (measured on 2026-12-07). Events'
check that its sequences reached real resources holds with a quarter: they are derandomized,
the same in every run. Intake's are derandomized too, but a quarter of them reach a single
accepted erasure: they keep their count.
"""

import os

#: `REBOND_FUZZ=quick`: the inner loop's share of the examples.
QUICK_SHARE = 4


def examples(full: int) -> int:
    """`full` examples, or a quarter of them (at least one) when `REBOND_FUZZ=quick`."""
    quick = os.environ.get("REBOND_FUZZ", "").lower() == "quick"
    return max(1, full // QUICK_SHARE) if quick else full
