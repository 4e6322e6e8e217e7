"""A worker killed without stopping (SIGKILL, a crash) leaves its live gauges' files in
the multiprocess directory; the next worker's start drops them from the sum
(server.metrics.forget_crashed_workers), while counters keep what was counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from server import metrics
    metrics.SUBSCRIPTIONS.set(7)
    metrics.EVENTS.inc(3)
    print("ready", flush=True)
    time.sleep(60)
    """
)
READ = textwrap.dedent(
    """
    from prometheus_client.parser import text_string_to_metric_families
    from server import metrics
    gone = metrics.forget_crashed_workers()
    values = {s.name: s.value for f in text_string_to_metric_families(
        metrics.exposition().decode()) for s in f.samples}
    print(len(gone), values.get("customer_graph_subscriptions_open"),
          values.get("customer_graph_subscription_events_total"))
    """
)


def test_a_killed_workers_gauges_leave_the_sum(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert worker.stdout.readline().strip() == "ready"
    before = subprocess.run(
        [sys.executable, "-c", READ.replace("metrics.forget_crashed_workers()", "[]")],
        env=env, capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout.split()  # fmt: skip
    assert before[1:] == ["7.0", "3.0"]  # alive: counted
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    after = subprocess.run(
        [sys.executable, "-c", READ], env=env, capture_output=True, text=True, cwd=ROOT,
        check=True,
    ).stdout.split()  # fmt: skip
    # The killed worker (and the first reader, gone too) left the sum; the counter stays.
    assert int(after[0]) >= 1 and after[1:] == ["0.0", "3.0"], after
