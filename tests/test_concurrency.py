"""Four runs at once against one database, as threads and as processes: all finish, all are
listed, and each resumes on its own, also after its process was killed mid-run.

Every run has its own question and source text, and its answer is built from both (through a
sub-call), so a run that read another run's state, blobs or checkpoints would answer wrongly.
The stub holds the four runs' sub-calls at a barrier: the test only passes if all four were in
flight at the same moment.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rlm_research.graph import run_index
from rlm_research.graph.api import list_runs, resume, run
from rlm_research.graph.settings import Settings
from rlm_research.nodes.model_call import ModelCallError

from tests.support.cli_process import cli_env, start_cli
from tests.support.scripted_models import py
from tests.support.stub_openai import Fault, RuleResponder, StubOpenAI

N = 4


def token(i: int) -> str:
    return f"tok{i}-{'abcdefgh'[i]}{i * 7919}"


def expected(i: int) -> str:
    return f"echo {token(i)} for run {i}"


class Script:
    """The stub's replies for run i ("Question: run i"): turn 1 asks a child about the first
    word of the run's own context, turn 2 answers with what the child said.

    `barrier`: children wait there until all N have arrived (proof the runs overlap).
    `slow`: while set, children get a 60 s delay (to be killed in flight).
    `fail_turn2`: runs whose second turn gets a 500 (with max_retries=0: the run fails).
    """

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.barrier = barrier
        self.slow = threading.Event()
        self.fail_turn2: set[int] = set()

    def child(self, messages, body):
        text = messages[-1]["content"]
        m = re.match(r"child of run (\d+): (\S+)", text)
        reply = f"echo {m.group(2)} for run {m.group(1)}"
        if self.barrier is not None:
            self.barrier.wait(timeout=30)
        if self.slow.is_set():
            return Fault.delay(60, reply)
        return reply

    def turn2(self, messages, body):
        n = int(re.search(r"Question: run (\d+)", messages[1]["content"]).group(1))
        if n in self.fail_turn2:
            return Fault.status(500, message=f"turn 2 of run {n} failed")
        return py("FINAL(S)")

    def responder(self) -> RuleResponder:
        return RuleResponder(
            [
                (
                    r"^Question: run (?P<n>\d+)",
                    py("S = sub_lm('child of run {n}: ' + context.split()[0])\nprint('S ok')"),
                ),
                (r"^child of run", self.child),
                (r"S ok", self.turn2),
            ],
            default="unexpected",
        )


def calls_for(calls: list[dict], pattern: str) -> int:
    return sum(1 for c in calls if re.search(pattern, c["messages"][-1]["content"]))


def context_of(i: int) -> str:
    return f"{token(i)} is the first word of run {i}'s source.\n" + f"filler {i}\n" * 50


# -- threads -------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_four_runs_in_threads_share_one_database(tmp_path: Path):
    db = tmp_path / "data" / "runs.sqlite"
    script = Script(threading.Barrier(N))
    with StubOpenAI(script.responder()) as stub:
        settings = Settings(
            model="openai:stub",
            base_url=stub.base_url,
            data_dir=str(db.parent),
            max_retries=0,
            request_timeout=40,
            cell_timeout=60,
        )
        script.fail_turn2 = {1, 3}  # two of the four fail at their second turn

        def one(i: int):
            try:
                return run(f"run {i}", context_of(i), settings=settings, run_id=f"t{i}", db_path=db)
            except ModelCallError as e:
                return e

        with ThreadPoolExecutor(N) as pool:
            first = list(pool.map(one, range(N)))

        runs = {r["run_id"]: r for r in list_runs(db)}
        assert sorted(runs) == [f"t{i}" for i in range(N)]
        for i in (0, 2):
            assert first[i].answer == expected(i), first[i]
            assert runs[f"t{i}"]["status"] == "answered"
        for i in (1, 3):
            assert isinstance(first[i], ModelCallError) and f"run {i} failed" in str(first[i])
            assert runs[f"t{i}"]["status"] == "failed"

        # Each failed run resumes on its own, both at once; the others are not touched.
        script.fail_turn2 = set()
        script.barrier = None
        with ThreadPoolExecutor(2) as pool:
            resumed = list(
                pool.map(lambda i: resume(f"t{i}", settings=settings, db_path=db), (1, 3))
            )
        calls = stub.calls

    assert [r.answer for r in resumed] == [expected(1), expected(3)]
    assert {r["run_id"]: r["status"] for r in list_runs(db)} == {
        f"t{i}": "answered" for i in range(N)
    }
    # Nothing finished was asked again: one first turn and one child per run; a second turn for
    # each, plus the failed try of runs 1 and 3.
    for i in range(N):
        assert calls_for(calls, rf"^Question: run {i}\b") == 1
        assert calls_for(calls, rf"^child of run {i}:") == 1
    assert len(calls) == 3 * N + 2


# -- processes -----------------------------------------------------------------------------------
def start_runs(tmp_path: Path, db: Path, base_url: str, env: dict[str, str]):
    procs = []
    for i in range(N):
        doc = tmp_path / f"doc{i}.txt"
        doc.write_text(context_of(i))
        args = [
            "run",
            f"run {i}",
            "-s",
            str(doc),
            "--model",
            "openai:stub",
            "--base-url",
            base_url,
            "--db",
            str(db),
            "--run-id",
            f"p{i}",
            "--json",
        ]
        # start_new_session: its own process group, so a kill reaches nothing of ours.
        procs.append(start_cli(*args, env=env, start_new_session=True))
    return procs


def finish(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    return json.loads(out)


def finish_all(procs: list[subprocess.Popen[str]]) -> list[dict]:
    """Each process's JSON result; any still running when one fails is killed."""
    try:
        return [finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def wait_until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_four_cli_processes_share_one_database(tmp_path: Path):
    db = tmp_path / "data" / "runs.sqlite"
    env = cli_env(tmp_path, RLM_MAX_RETRIES="0")
    script = Script(threading.Barrier(N))
    with StubOpenAI(script.responder()) as stub:
        procs = start_runs(tmp_path, db, stub.base_url, env)
        outs = finish_all(procs)
        assert stub.call_count == 3 * N
    for i, out in enumerate(outs):
        assert out["status"] == "answered" and out["answer"] == expected(i)
        assert Path(out["report"]).is_file()
    runs = {r["run_id"]: r for r in list_runs(db)}
    assert {k: r["status"] for k, r in runs.items()} == {f"p{i}": "answered" for i in range(N)}
    assert {k: r["answer"] for k, r in runs.items()} == {f"p{i}": expected(i) for i in range(N)}


@pytest.mark.timeout(120)
def test_four_processes_killed_mid_run_each_resume_on_their_own(tmp_path: Path):
    db = tmp_path / "data" / "runs.sqlite"
    env = cli_env(tmp_path, RLM_MAX_RETRIES="0")
    script = Script()
    script.slow.set()  # children hang: every run is killed with its sub-call in flight
    with StubOpenAI(script.responder()) as stub:
        procs = start_runs(tmp_path, db, stub.base_url, env)
        try:
            wait_until(lambda: calls_for(stub.calls, r"^child of run") == N)
            time.sleep(0.3)
        finally:
            for p in procs:  # SIGKILL the run process alone, as the OOM killer would
                p.kill()
                p.wait()
            for p in procs:  # then whatever it left in its process group, before reading pipes
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.communicate()
        assert [p.returncode for p in procs] == [-signal.SIGKILL] * N

        runs = {r["run_id"]: r for r in list_runs(db)}
        assert sorted(runs) == [f"p{i}" for i in range(N)]
        for r in runs.values():
            assert r["status"] == "interrupted" and r["last_step"]["next"]
            assert r["usage"]["models"]["openai:stub"]["calls"] == 1  # turn 1 is saved

        script.slow.clear()
        resumers = [
            start_cli("resume", f"p{i}", "--db", str(db), "--json", env=env, start_new_session=True)
            for i in range(N)
        ]
        outs = finish_all(resumers)
        calls = stub.calls

    for i, out in enumerate(outs):
        assert out["status"] == "answered" and out["answer"] == expected(i), out
    assert {r["run_id"]: r["status"] for r in list_runs(db)} == {
        f"p{i}": "answered" for i in range(N)
    }
    for i in range(N):
        # The finished first turn was not asked again; the child killed in flight was.
        assert calls_for(calls, rf"^Question: run {i}\b") == 1
        assert calls_for(calls, rf"^child of run {i}:") == 2
    assert calls_for(calls, r"S ok") == N
    assert run_index.get_run(db, "p0")["report"]
