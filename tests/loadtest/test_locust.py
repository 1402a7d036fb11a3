"""``make loadtest`` in miniature: Locust's agents and callers against a real server.

The same driver as ``make loadtest`` (``loadtest/run.py``) starts a server on
loopback and runs the locustfile headless, at a small load for a few seconds;
Locust's own statistics must show calls offered and answered, and no failure.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_locust_run_offers_and_answers_calls_without_a_failure(tmp_path: Path) -> None:
    prefix = tmp_path / "locust"
    command = [sys.executable, str(ROOT / "loadtest" / "run.py"), "--agents", "6"]
    command += ["--queues", "2", "--callers", "1", "--rate-each", "2", "--seconds", "10"]
    command += ["--csv", str(prefix)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr

    with open(f"{prefix}_stats.csv", newline="") as stats:
        rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(stats)}
    assert int(rows[("CTI", "offer latency")]["Request Count"]) > 0
    assert int(rows[("POST", "POST /v1/calls")]["Request Count"]) > 0
    assert int(rows[("WS", "accept")]["Request Count"]) > 0
    assert int(rows[("", "Aggregated")]["Failure Count"]) == 0
    assert "server log: 0 warnings or errors" in run.stdout
