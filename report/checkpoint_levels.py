"""Every level of a run as its checkpoints record it, finished or not: each level's latest state
and its steps over time (what ran, from when to when, how many model calls it made).

A sub-call is a nested invocation of the same compiled graph, so each level has a checkpoint
namespace of its own under its parent's (`spawn_subgraph:<task>|spawn_subgraph:<task>`). The
namespaces come from the checkpointer's `list` and each level's history from the graph's
`get_state_history`: both public APIs, so any checkpointer (SQLite, Postgres) works. Nothing
here writes a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rlm_research.graph.usage import total_calls

START = "__start__"
SPAWN = "spawn_subgraph"


@dataclass
class Step:
    """One superstep of one level: `node` ran from `started` to `ended` (None: it had not ended
    when the last checkpoint was written: still running, or where the run stopped)."""

    node: str
    started: float
    ended: float | None
    model_calls: int  # made by this level during the step (from its own usage)
    turn: int  # the level's turn count after the step


@dataclass
class LevelTrace:
    ns: str
    values: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    next: list[str] = field(default_factory=list)  # due after the latest checkpoint
    last_step: int | None = None
    updated: float | None = None  # when the latest checkpoint was written

    @property
    def finished(self) -> bool:
        return bool(self.values.get("tree_ref")) and not self.next


def parent_ns(ns: str) -> str | None:
    """The namespace of the level that spawned this one; None for the root."""
    if not ns:
        return None
    return ns.rsplit("|", 1)[0] if "|" in ns else ""


def read_levels(app: Any, saver: Any, run_id: str) -> dict[str, LevelTrace]:
    """{namespace: LevelTrace} for every level of the run ("" is the root); {} if none."""
    thread = {"configurable": {"thread_id": run_id}}
    namespaces = {t.config["configurable"].get("checkpoint_ns", "") for t in saver.list(thread)}
    out: dict[str, LevelTrace] = {}
    for ns in sorted(namespaces, key=lambda n: (n.count("|"), n)):
        config = {"configurable": {"thread_id": run_id, "checkpoint_ns": ns}}
        history = list(app.get_state_history(config))
        if history:
            out[ns] = trace_of(ns, history)
    return out


def trace_of(ns: str, history: list[Any]) -> LevelTrace:
    """A level's trace from its state snapshots (any order; sorted by step here)."""
    snaps = sorted(history, key=lambda s: ((s.metadata or {}).get("step", -2), s.created_at))
    latest = snaps[-1]
    trace = LevelTrace(
        ns=ns,
        values=dict(latest.values or {}),
        next=list(dict.fromkeys(latest.next)),
        last_step=(latest.metadata or {}).get("step"),
        updated=_epoch(latest.created_at),
    )
    for before, after in zip(snaps, snaps[1:], strict=False):
        trace.steps.append(_step(before, after))
    if latest.next:
        trace.steps.append(_step(latest, None))
    return trace


def _step(before: Any, after: Any | None) -> Step:
    nodes = list(dict.fromkeys(before.next)) or ["?"]
    node = SPAWN if SPAWN in nodes else nodes[0]
    calls = 0
    if after is not None:
        calls = total_calls(after.values.get("own_usage")) - total_calls(
            before.values.get("own_usage")
        )
    turn = (after or before).values.get("turn") or 0
    return Step(
        node=node,
        started=_epoch(before.created_at) or 0.0,
        ended=_epoch(after.created_at) if after is not None else None,
        model_calls=max(0, calls),
        turn=int(turn),
    )


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
