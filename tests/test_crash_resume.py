"""Crash and resume with real processes: a run is killed with SIGKILL at a chosen point and
resumed in a new process. The resumed run must give the uninterrupted run's answer, and the model
calls over both processes (counted at a stub server in its own process) must equal the
uninterrupted count plus at most the calls in flight at the kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rlm_research.graph.api import list_runs
from rlm_research.graph.usage import total_calls as total_calls_in

from tests.support.scripted_models import py
from tests.support.stub_openai import PROJECT_ROOT, StubProcess, read_count_file

SLOW = 60.0  # the reply that is in flight when the test kills the run


FINISH = py("FINAL('done:' + str(S1))")
# Each scenario: root/child rules (regex on the last user message -> reply), the rule whose reply
# is slow in the crashed run, how many finished calls to wait for before the kill, and max_depth.
SCENARIOS = {
    "root call in flight": (
        [
            (r"^Question: main", py("S1 = len(context)\nprint('S1 ok')")),
            (r"S1 ok", FINISH),
        ],
        r"S1 ok",
        1,
        1,
    ),
    "middle of a cell": (
        [
            (r"^Question: main", py("import time\nS1 = 'x'\ntime.sleep(4)\nprint('S1 ok')")),
            (r"S1 ok", FINISH),
        ],
        None,
        1,
        1,
    ),
    "cell waiting on sub-calls": (
        [
            (r"^Question: main", py("S1 = sub_lm('child one')\nprint('S1 ok')")),
            (r"^child one", "ONE"),
            (r"S1 ok", FINISH),
        ],
        r"^child one",
        1,
        1,
    ),
    "inside a depth-2 child": (
        [
            (r"^Question: main", py("S1 = sub_lm('count as', context='a-a-a')\nprint('S1 ok')")),
            (r"^Question: count as", py("n = context.count('a')\nFINAL(str(n) + sub_lm('leaf'))")),
            (r"^leaf", "L"),
            (r"S1 ok", FINISH),
        ],
        r"^leaf",
        2,
        2,
    ),
    "batch with some children finished": (
        [
            (
                r"^Question: main",
                py("S1 = sub_lm_batched(['b1', 'b2', 'b3', 'b4'])\nprint('S1 ok')"),
            ),
            (r"^b4", "R4"),
            (r"^(b\d)", "R-{1}"),
            (r"S1 ok", FINISH),
        ],
        r"^b4",
        4,
        1,
    ),
}


def rules_for(rules, slow_pattern):
    out = []
    for pattern, reply in rules:
        if pattern == slow_pattern:
            reply = {"fault": "delay", "seconds": SLOW, "reply": reply}
        out.append([pattern, reply])
    return {"rules": out, "default": "unexpected"}


def runner(mode: str, db: Path, base_url: str, max_depth: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.support.crash_runner", mode, "--db", str(db)]
    cmd += ["--run-id", "crash", "--base-url", base_url, "--max-depth", str(max_depth)]
    env = {**os.environ, "RLM_API_KEY": "test"}
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen[str]) -> dict:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return json.loads(out.strip().splitlines()[-1])


def wait_for_calls(count_file: Path, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(read_count_file(count_file, ok_only=True)) < n:
        assert time.monotonic() < deadline, f"fewer than {n} model calls finished"
        time.sleep(0.05)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_killed_run_resumes_without_paying_twice(name: str, tmp_path: Path) -> None:
    rules, slow, calls_before_kill, max_depth = SCENARIOS[name]

    ref_dir = tmp_path / "reference"
    ref_dir.mkdir()
    with StubProcess(rules_for(rules, None), ref_dir) as stub:
        reference = finish(runner("run", ref_dir / "runs.sqlite", stub.base_url, max_depth))
        reference_calls = len(stub.calls(ok_only=True))
    assert reference["stop_reason"] == "answered"

    work = tmp_path / "crash"
    work.mkdir()
    db = work / "runs.sqlite"
    with StubProcess(rules_for(rules, slow), work) as stub:
        proc = runner("run", db, stub.base_url, max_depth)
        wait_for_calls(stub.count_file, calls_before_kill)
        time.sleep(1.5)  # into the slow call, or into the sleeping cell
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    in_flight = 0 if slow is None else 1
    [row] = list_runs(db)  # what `rlm-research runs` shows for the killed run
    assert row["status"] == "interrupted" and row["question"] == "main question"
    assert row["last_step"]["next"] and total_calls_in(row["usage"]) >= 1
    with StubProcess(rules_for(rules, None), work) as stub:  # same count file, fast replies
        resumed = finish(runner("resume", db, stub.base_url, max_depth))
        total_calls = len(stub.calls(ok_only=True))

    assert resumed == reference
    assert reference_calls <= total_calls <= reference_calls + in_flight
