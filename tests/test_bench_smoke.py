"""scripts/bench.py at its tiny scale, so the benchmark cannot rot: the baseline's JSON is the
app's byte for byte, the rush fills exactly the seats, the report agrees with its hand-written
cross-check, no SMS is sent twice or lost, and the JSON file has every scenario. (It checks
that the figures exist, never how fast anything is: those are for the full run to print.)

Needs wrk and Debian's PostgreSQL server binaries with pg_stat_statements; skips without them
unless DIVIDE_SUPPORT_REQUIRE_BENCH=1 (CI, whose .ci/run installs both)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
FIGURES = ("rps", "p50_ms", "p95_ms", "p99_ms", "statements_per_request")


def _require_tools() -> None:
    missing = [name for name, ok in (
        ("wrk", shutil.which("wrk")),
        ("PostgreSQL server with pg_stat_statements",
         glob.glob("/usr/share/postgresql/*/extension/pg_stat_statements.control")),
    ) if not ok]
    if missing:
        reason = "not installed: " + ", ".join(missing)
        if os.environ.get("DIVIDE_SUPPORT_REQUIRE_BENCH") == "1":
            pytest.fail(f"{reason}, and DIVIDE_SUPPORT_REQUIRE_BENCH=1 requires it")
        pytest.skip(reason)


def test_bench_tiny_runs_every_scenario_and_its_checks_hold(tmp_path):
    _require_tools()
    output = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH), "--scale", "tiny", "--output", str(output)],
                          capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["failures"] == []

    for rows in ("first_20", "first_100"):
        entry = results["day_view"][rows]
        assert entry["json_identical"] is True
        assert entry["rows"] > 0
        assert entry["ratio"] > 0
        for side in ("app", "baseline"):
            assert all(entry[side][key] is not None for key in FIGURES)
        # counted by PostgreSQL, resets and BEGIN/COMMIT included: at most 6 (issue 12)
        assert entry["app"]["statements_per_request"] <= 6
        assert entry["target_ratio"] in (0.35, 0.20)
    assert set(results["search"]) == {"kanji", "kana", "phone"}
    assert all(results["search"][k]["found"] > 0 for k in results["search"])
    assert results["register"]["sent_statements_per_request"] <= 12
    for scenario in (results["register"], results["report"], results["console_home"],
                     *results["search"].values()):
        assert all(scenario[key] is not None for key in FIGURES)
        assert scenario["errors"] == 0

    rush = results["rush"]
    assert (rush["confirmed"], rush["waitlisted"]) == (rush["seats"], rush["clients"] - rush["seats"])
    assert rush["waitlist_in_order"] is True and rush["errors"] == 0 and rush["drain_seconds"] > 0

    assert results["report"]["cross_check"]["mismatches"] == []
    assert results["console_home"]["signed_in"] is True
    rounds = results["sms"]["rounds"]
    assert [r["workers"] for r in rounds] == [1, 2]
    assert all(r["duplicates"] == 0 and r["losses"] == 0 and not r["timed_out"] for r in rounds)
    assert "1 day view 20 rows" in done.stdout  # the table
