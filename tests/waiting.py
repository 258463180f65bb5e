"""Waiting in tests on events, never on the clock: bounds on a test, not timing assertions."""

from __future__ import annotations

import threading


def submit_while_busy(submit, items) -> list:
    """``submit(item)`` for each item on another thread, the renderer held: the results, or a failure
    if the submits did not return while it was held (they would wait for it: a blocking submit)."""
    results = []
    submitter = threading.Thread(target=lambda: results.extend(submit(i) for i in items), daemon=True)
    submitter.start()
    submitter.join(timeout=30)  # a bound on the test, not a timing assertion: a blocking submit never returns
    assert not submitter.is_alive(), "submit waited for the busy renderer"
    return results
