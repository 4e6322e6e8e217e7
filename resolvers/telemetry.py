"""Counts the process may report (server/metrics.py installs the sink): the use cases say
what they did without importing server/, since imports point down."""

from __future__ import annotations

from collections.abc import Callable

JobRows = Callable[[str, str, int], None]  # (job kind, outcome, rows)
_sinks: list[JobRows] = []


def install(sink: JobRows) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def job_rows(job: str, outcome: str, count: int) -> None:
    """`count` more rows of an import, export or bulk job ended as `outcome`."""
    if count:
        for sink in _sinks:
            sink(job, outcome, count)


class Progress:
    """Turns a job's running totals into increments (a resumed job starts from its saved
    totals, so nothing is counted twice)."""

    def __init__(self, job: str, **totals: int) -> None:
        self.job = job
        self.totals = totals

    def report(self, **totals: int) -> None:
        for outcome, total in totals.items():
            job_rows(self.job, outcome, total - self.totals.get(outcome, 0))
            self.totals[outcome] = total
