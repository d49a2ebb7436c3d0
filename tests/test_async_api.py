"""The async API (`arun`, `astream`, `aresume`): two runs at once in one event loop against the
stub server; one cancelled mid-batch and resumed without paying again for finished calls."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from rlm_research.graph import run_index
from rlm_research.graph.api import aresume, arun, astream
from rlm_research.graph.settings import Settings

from tests.support.scripted_models import py
from tests.support.stub_openai import Fault, RuleResponder, StubOpenAI, last_user_text

SLOW = 3.0  # the batch child still in flight when the test cancels


def rules(slow: bool) -> RuleResponder:
    b4 = Fault.delay(SLOW, "R4") if slow else "R4"
    return RuleResponder(
        [
            (r"^Question: batch", py("rs = sub_lm_batched(['b1', 'b2', 'b3', 'b4'])\nprint(rs)")),
            (r"^b4", b4),
            (r"^(?P<name>b\d)", "R-{name}"),
            (r"R-b1", py("FINAL('done:' + ','.join(rs))")),
            (r"^Question: plain", py("n = len(context)\nprint('n is', n)")),
            (r"n is", py("FINAL('plain:' + str(n))")),
        ],
        default="unexpected",
    )


def settings_for(stub: StubOpenAI, tmp_path: Path) -> Settings:
    os.environ.setdefault("RLM_API_KEY", "test")
    return Settings(
        model="openai:stub", base_url=stub.base_url, data_dir=str(tmp_path), cell_timeout=30.0
    )


def asked(stub: StubOpenAI) -> list[str]:
    return [last_user_text(c["messages"]) for c in stub.calls]


@pytest.mark.timeout(120)
def test_two_async_runs_at_once_in_one_loop(tmp_path: Path) -> None:
    with StubOpenAI(rules(slow=False), delay=0.2) as stub:
        settings = settings_for(stub, tmp_path)

        async def both():
            return await asyncio.gather(
                arun("batch", "text", settings=settings, run_id="a1"),
                arun("plain", "x" * 42, settings=settings, run_id="a2"),
            )

        first, second = asyncio.run(both())
        seen = asked(stub)
    assert (first.status, first.answer) == ("answered", "done:R-b1,R-b2,R-b3,R4")
    assert (second.status, second.answer) == ("answered", "plain:42")
    # They ran at once: the plain run's calls came between the batch run's first and last.
    plain = [i for i, text in enumerate(seen) if text.startswith(("Question: plain", "Output"))]
    assert plain and min(plain) < len(seen) - 1
    db = tmp_path / "runs.sqlite"
    assert {r["run_id"]: r["status"] for r in run_index.list_runs(db)} == {
        "a1": "answered",
        "a2": "answered",
    }
    assert Path(first.report).is_file() and Path(second.report).is_file()


@pytest.mark.timeout(180)
def test_a_cancelled_async_run_resumes_without_paying_again(tmp_path: Path) -> None:
    with StubOpenAI(rules(slow=True)) as stub:
        settings = settings_for(stub, tmp_path)
        db = tmp_path / "runs.sqlite"

        async def cancel_mid_batch():
            events = []

            async def consume():
                async for event in astream("batch", "text", settings=settings, run_id="c1"):
                    events.append(event)

            task = asyncio.create_task(consume())
            other = asyncio.create_task(arun("plain", "y" * 7, settings=settings, run_id="c2"))
            while sum(t in ("R-b1", "R-b2", "R-b3") for t in replies(stub)) < 3:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # b4 is in flight
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await other

        other = asyncio.run(cancel_mid_batch())
        assert other.answer == "plain:7"  # the run beside it went on
        assert run_index.get_run(db, "c1")["status"] == "interrupted"
        before = asked(stub)
        # Resume with no settings at all: the stored ones, the same database.
        result = asyncio.run(aresume("c1", db_path=db))
        after = asked(stub)[len(before) :]
    assert (result.status, result.answer) == ("answered", "done:R-b1,R-b2,R-b3,R4")
    # The three children that had finished are not asked again, nor the root's first turn.
    assert not [t for t in after if t in ("b1", "b2", "b3") or t.startswith("Question: batch")]
    assert after.count("b4") <= 1  # at most the child in flight at the cancel, once


def replies(stub: StubOpenAI) -> list[str]:
    """What each finished batch child was told to answer (from the requests it got)."""
    return [f"R-{t}" for t in asked(stub) if t in ("b1", "b2", "b3")]
