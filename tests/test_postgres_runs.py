"""Runs on a shared PostgreSQL database (a private server the session starts): a run killed in
one process resumes in another with an empty data folder; sixteen runs from four processes
finish, and four killed at once resume at once; every blob is stored once.

Model calls are counted at the stub server, so "no finished call paid again" is measured where
a provider would bill it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from rlm_research.graph.api import list_runs

from tests.support.cli_process import cli_env, run_cli
from tests.support.pg_runner import context_for, expected_answer
from tests.support.scripted_models import py
from tests.support.stub_openai import PROJECT_ROOT, Fault, RuleResponder, StubOpenAI, StubProcess
from tests.test_crash_resume import SCENARIOS, finish, rules_for, wait_for_calls

PARTS = 4


# -- resume anywhere -------------------------------------------------------------------------------
def crash_runner(mode: str, url: str, data_dir: Path, base_url: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.support.crash_runner", mode, "--db", url]
    cmd += ["--data-dir", str(data_dir), "--run-id", "crash", "--base-url", base_url]
    env = {**os.environ, "RLM_API_KEY": "test"}
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.timeout(300)
def test_run_killed_mid_batch_resumes_in_another_process_with_an_empty_folder(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:
    rules, slow, calls_before_kill, _depth = SCENARIOS["batch with some children finished"]
    reference_url = postgres_server.new_database(f"ref_{os.getpid()}_{time.time_ns() % 10**6}")
    (tmp_path / "ref").mkdir()
    with StubProcess(rules_for(rules, None), tmp_path / "ref") as stub:
        reference = finish(crash_runner("run", reference_url, tmp_path / "ref-data", stub.base_url))
        reference_calls = len(stub.calls(ok_only=True))
    assert reference["stop_reason"] == "answered"

    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    (tmp_path / "stub").mkdir()
    with StubProcess(rules_for(rules, slow), tmp_path / "stub") as stub:
        proc = crash_runner("run", postgres_url, host_a, stub.base_url)
        wait_for_calls(stub.count_file, calls_before_kill)  # the root turn and 3 of 4 children
        time.sleep(1.5)  # the fourth child is in flight
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    [row] = list_runs(postgres_url)  # the lock died with the process: seen from any host
    assert row["status"] == "interrupted" and row["last_step"]["next"]
    assert not host_b.exists()
    with StubProcess(rules_for(rules, None), tmp_path / "stub") as stub:  # same count file
        resumed = finish(crash_runner("resume", postgres_url, host_b, stub.base_url))
        total_calls = len(stub.calls(ok_only=True))
    assert resumed == reference
    assert reference_calls <= total_calls <= reference_calls + 1  # at most the one in flight
    assert not (host_b / "runs.sqlite").exists() and not (host_b / "blobs").exists()

    # `rlm-research runs` from a third host lists it, answered.
    env = cli_env(tmp_path / "host-c", RLM_DB_URL=postgres_url)
    out = run_cli("runs", "--json", env=env)
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert (row["run_id"], row["status"]) == ("crash", "answered")
    shown = run_cli("show", "crash", "--db", postgres_url, "--json", env=env)
    assert json.loads(shown.stdout)["answer"] == reference["answer"]


# -- many at once ----------------------------------------------------------------------------------
class ManyRuns:
    """Stub replies for pg_runner's runs: turn 1 sends a batch of PARTS children, each asked
    about the run's own first word; turn 2 joins their answers. Children of runs in `slow_last`
    hang on their last part (to be killed in flight); `in_flight` tracks overlap."""

    def __init__(self) -> None:
        self.slow_last: set[str] = set()
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

    def child(self, messages, body):
        m = re.match(r"child of run (\S+) part (\d+): (\S+)", messages[-1]["content"])
        run_id, part, word = m.groups()
        reply = f"echo {word} part {part}"
        if run_id in self.slow_last and int(part) == PARTS - 1:
            return Fault.delay(120, reply)
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(0.3)  # long enough for batches of several runs to overlap
        with self.lock:
            self.in_flight -= 1
        return reply

    def responder(self) -> RuleResponder:
        batch = (
            f"S = sub_lm_batched(['child of run {{n}} part ' + str(i) + ': ' + context.split()[0]"
            f" for i in range({PARTS})])\nprint('S ok')"
        )
        return RuleResponder(
            [
                (r"^Question: run (?P<n>\S+)", py(batch)),
                (r"^child of run", self.child),
                (r"S ok", py("FINAL(' | '.join(S))")),
            ],
            default="unexpected",
        )


def start_runner(mode: str, url: str, data_dir: Path, base_url: str, run_ids: list[str]):
    cmd = [sys.executable, "-m", "tests.support.pg_runner", mode, "--db", url]
    cmd += ["--data-dir", str(data_dir), "--base-url", base_url, *run_ids]
    env = {**os.environ, "RLM_API_KEY": "test"}
    return subprocess.Popen(
        cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def answers_of(procs: list[subprocess.Popen[str]], timeout: float = 240) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=timeout)
            assert p.returncode == 0, stderr[-2000:]
            out.update(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return out


def count(calls: list[dict], pattern: str) -> int:
    return sum(1 for c in calls if re.search(pattern, c["messages"][-1]["content"]))


def blob_rows(url: str) -> tuple[int, int, int, int]:
    with psycopg.connect(url) as conn:
        blobs, distinct, listed = conn.execute(
            "SELECT count(*), count(DISTINCT hash), coalesce(sum(chunks), 0) FROM rlm_blobs"
        ).fetchone()
        chunks = conn.execute("SELECT count(*) FROM rlm_blob_chunks").fetchone()[0]
    return blobs, distinct, listed, chunks


@pytest.mark.timeout(600)
def test_sixteen_runs_from_four_processes_then_four_killed_resume_at_once(
    postgres_url: str, tmp_path: Path
) -> None:
    script = ManyRuns()
    groups = [[f"m{p}-{k}" for k in range(4)] for p in range(4)]
    killed = [f"k{p}" for p in range(4)]
    with StubOpenAI(script.responder()) as stub:
        procs = [
            start_runner("run", postgres_url, tmp_path / f"proc{p}", stub.base_url, ids)
            for p, ids in enumerate(groups)
        ]
        answers = answers_of(procs)
        assert answers == {r: expected_answer(r, PARTS) for ids in groups for r in ids}
        assert script.max_in_flight > PARTS  # batches of different runs were in flight at once

        # Four more, each in its own process, killed with their last child in flight.
        script.slow_last = set(killed)
        procs = [
            start_runner("run", postgres_url, tmp_path / f"kill{p}", stub.base_url, [r])
            for p, r in enumerate(killed)
        ]
        try:
            deadline = time.monotonic() + 180
            while count(stub.calls, r"^child of run k\d part") < len(killed) * PARTS:
                assert time.monotonic() < deadline, "the batches did not all start"
                assert all(p.poll() is None for p in procs), "a runner died"
                time.sleep(0.1)
            time.sleep(3)  # the finished children's writes reach the database
        finally:
            for p in procs:
                p.kill()
                p.communicate()
        script.slow_last = set()
        resumers = [
            start_runner("resume", postgres_url, tmp_path / f"resume{p}", stub.base_url, [r])
            for p, r in enumerate(killed)
        ]
        resumed = answers_of(resumers)
        calls = stub.calls

    assert resumed == {r: expected_answer(r, PARTS) for r in killed}
    runs = {r["run_id"]: r for r in list_runs(postgres_url)}
    assert len(runs) == 20 and {r["status"] for r in runs.values()} == {"answered"}
    for r in [*killed, *(r for ids in groups for r in ids)]:
        assert count(calls, rf"^Question: run {r}\b") == 1  # no finished turn asked again
        for part in range(PARTS - 1):
            assert count(calls, rf"^child of run {r} part {part}:") == 1
    assert count(calls, r"S ok") == len(runs)
    for r in killed:  # only the child killed in flight was asked again
        assert count(calls, rf"^child of run {r} part {PARTS - 1}:") == 2

    # Every blob once: one row per hash, its chunks all there and no others; each run's
    # 1.2 MB context is two 1 MB chunks.
    blobs, distinct, listed, chunks = blob_rows(postgres_url)
    assert blobs == distinct and listed == chunks
    with psycopg.connect(postgres_url) as conn:
        for r in ("m0-0", "k3"):
            digest = hashlib.sha256(context_for(r).encode()).hexdigest()
            assert conn.execute(
                "SELECT chunks FROM rlm_blobs WHERE hash = %s", (digest,)
            ).fetchall() == [(2,)]
