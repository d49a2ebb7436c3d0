"""Everything known about one run, gathered once for the markdown report, the JSONL trajectory
and the HTML viewer: the question, answer, status and why it ended; the call tree with every
level's question, answer, turns (code and what the model saw next), usage and timing; budgets
set and used; and, for a run that has not finished, where it stopped and how to resume it.

Sources, in order of preference: the run's checkpoints (every level, finished or not, with the
time of each step: see `checkpoint_levels`), else the call tree of a finished result (no step
timing), plus the run index for status, settings, sources and error. Reads only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlm_research.graph.blob_store import BlobNotFound, BlobStore
from rlm_research.graph.stores import Db, blob_store_for, describe, is_postgres
from rlm_research.graph.usage import Usage, add_usage, total_tokens
from rlm_research.report.checkpoint_levels import LevelTrace, Step, parent_ns, read_levels

FINISHED, RUNNING, STOPPED = "finished", "running", "stopped"


@dataclass
class Level:
    """One node of the call tree: the root (path "0") or a sub-call ("0.2", "0.2.1", ...)."""

    path: str
    depth: int
    question: str
    answer: str
    stop_reason: str
    state: str  # finished | running | stopped (the run ended or was cut off before this level did)
    turn_count: int = 0  # model turns (a direct answer at the deepest level counts one)
    turns: list[dict[str, Any]] = field(default_factory=list)  # records of turns that ran code
    own_usage: Usage = field(default_factory=dict)
    usage: Usage = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    seconds: float | None = None
    steps: list[Step] = field(default_factory=list)
    next: list[str] = field(default_factory=list)
    children: list[Level] = field(default_factory=list)

    def walk(self) -> Iterator[Level]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class RunRecord:
    run_id: str
    question: str
    answer: str
    status: str
    stop_reason: str
    error: str | None = None
    usage: Usage = field(default_factory=dict)
    models: dict[str, str | None] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    budgets: list[dict[str, Any]] = field(default_factory=list)  # name, used, limit, unit
    root: Level | None = None
    generated_at: float = field(default_factory=time.time)
    resume_command: str | None = None
    stopped_at: list[str] = field(default_factory=list)  # lines: where an unfinished run is
    timed: bool = False  # step times come from checkpoints

    def levels(self) -> list[Level]:
        return list(self.root.walk()) if self.root else []

    def trajectory(self) -> list[dict[str, Any]]:
        """Every turn of every level, depth first, each with its level's `node` path."""
        return [{"node": lv.path, **t} for lv in self.levels() for t in lv.turns]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# -- gathering ------------------------------------------------------------------------------------
def gather_run(
    run_id: str,
    *,
    data_dir: str | Path,
    db_path: str | Path | None = None,
    result: Any = None,
    row: dict[str, Any] | None = None,
    checkpoints: bool = True,
    **known: Any,
) -> RunRecord:
    """The record of run `run_id` from its data folder (database, blobs/). `result` (a
    RunResult) and `row` (its run-index row) are used when given; `known` overrides fields
    (question, status, sources, models, error, resume_command). `checkpoints=False` reads only
    `result` and the run index (no step times)."""
    data_dir = Path(data_dir)
    db: Db = db_path if is_postgres(db_path) else Path(db_path or data_dir / "runs.sqlite")
    store = known.pop("store", None) or blob_store_for(db, data_dir)
    if row is None:
        row = read_row(db, run_id)
    traces = read_traces(db, run_id) if checkpoints else {}
    status = known.get("status") or row.get("status") or _status_of(result)
    root = None
    if traces.get("") is not None:
        root = level_from_traces(traces, "", "0", store, status)
    elif result is not None and getattr(result, "call_tree", None):
        root = level_from_tree(result.call_tree, "0", store)
    values = traces[""].values if "" in traces else {}
    answer = (getattr(result, "answer", None) or values.get("answer") or row.get("answer")) or ""
    stop = getattr(result, "stop_reason", None) or values.get("stop_reason")
    usage = getattr(result, "usage", None) or values.get("usage") or row.get("usage") or {}
    record = RunRecord(
        run_id=run_id,
        question=known.get("question") or row.get("question") or (root.question if root else ""),
        answer=answer,
        status=status,
        stop_reason=stop or row.get("stop_reason") or "unfinished",
        error=known.get("error", row.get("error")),
        usage=add_usage(usage, None),
        models=known.get("models") or {k: row.get(k) for k in ("model", "sub_model")},
        sources=list(known.get("sources") or row.get("sources") or []),
        root=root,
        timed=bool(traces),
    )
    record.budgets = budgets(values, row.get("settings") or {}, record)
    if status not in ("answered", "no_answer", "failed") or record.stop_reason == "unfinished":
        record.stopped_at = where_it_stopped(record, traces)
    if status in ("interrupted", "failed") or (status != RUNNING and record.stopped_at):
        record.resume_command = known.get("resume_command") or resume_command(run_id, db)
    return record


def read_row(db: Db, run_id: str) -> dict[str, Any]:
    if not is_postgres(db) and not Path(db).is_file():
        return {}
    from rlm_research.graph import run_index

    return run_index.get_run(db, run_id) or {}


def read_traces(db: Db, run_id: str) -> dict[str, LevelTrace]:
    """Every level's trace from the checkpoints, or {} when the database has none for the run."""
    if not is_postgres(db) and not Path(db).is_file():
        return {}
    from rlm_research.graph.builder import builder
    from rlm_research.graph.checkpoints import checkpointer

    with checkpointer(db) as saver:
        return read_levels(builder.compile(checkpointer=saver), saver, run_id)


def level_from_traces(
    traces: dict[str, LevelTrace],
    ns: str,
    path: str,
    store: BlobStore,
    status: str,
    kids_of: dict[str, list[str]] | None = None,
) -> Level:
    if kids_of is None:
        kids_of = {}
        for name in traces:
            parent = parent_ns(name)
            if parent is not None:
                kids_of.setdefault(parent, []).append(name)
    trace = traces[ns]
    v = trace.values
    state = FINISHED if trace.finished else (RUNNING if status == RUNNING else STOPPED)
    started = v.get("started_at") or (trace.steps[0].started if trace.steps else None)
    ended = trace.updated if trace.finished else None
    tree = _get_json(store, v.get("tree_ref")) or {}
    level = Level(
        path=path,
        depth=int(v.get("depth") or 0),
        question=_get_text(store, v.get("question_ref")) or v.get("question") or "",
        answer=v.get("answer") or "",
        stop_reason=v.get("stop_reason") or ("" if trace.finished else "unfinished"),
        state=state,
        turn_count=int(v.get("turn") or 0),
        turns=timed_turns(turn_records(v.get("trajectory") or [], store), trace.steps),
        own_usage=add_usage(v.get("own_usage"), None),
        usage=add_usage(v.get("usage"), None),
        started=started,
        ended=ended,
        seconds=tree.get("seconds") or _elapsed(started, ended or _until(state, trace)),
        steps=trace.steps,
        next=trace.next,
    )
    kids = list(kids_of.get(ns, []))
    order = child_order(v, tree, store)
    kids.sort(
        key=lambda n: (
            order.get(traces[n].values.get("tree_ref") or "", len(order)),
            traces[n].values.get("started_at") or 0.0,
        )
    )
    for i, kid in enumerate(kids, 1):
        level.children.append(level_from_traces(traces, kid, f"{path}.{i}", store, status, kids_of))
    return level


def child_order(values: dict[str, Any], tree: dict[str, Any], store: BlobStore) -> dict[str, int]:
    """{child tree ref: position} in request order, as far as the level's state knows it."""
    refs: list[str] = list(tree.get("children") or [])
    if not tree:
        for batch in values.get("child_trees") or []:
            refs += _get_json(store, batch) or []
        pending = _get_json(store, values.get("pending_ref")) or []
        done = {**(_get_json(store, values.get("batch_results_ref")) or {})}
        done.update(values.get("sub_results") or {})
        refs += [done[r["id"]].get("tree_ref", "") for r in pending if r.get("id") in done]
    return {ref: i for i, ref in enumerate(refs) if ref}


def level_from_tree(node: dict[str, Any], path: str, store: BlobStore | None) -> Level:
    """A level from a finished call tree (no checkpoints to read): no step timing."""
    level = Level(
        path=path,
        depth=int(node.get("depth") or 0),
        question=node.get("question") or "",
        answer=node.get("answer") or "",
        stop_reason=node.get("stop_reason") or "",
        state=FINISHED,
        turn_count=int(node.get("turns") or 0),
        turns=turn_records(node.get("trajectory") or [], store),
        own_usage=add_usage(node.get("own_usage"), None),
        usage=add_usage(node.get("usage"), None),
        seconds=node.get("seconds"),
    )
    for i, child in enumerate(node.get("children") or [], 1):
        if isinstance(child, dict):
            level.children.append(level_from_tree(child, f"{path}.{i}", store))
    return level


def turn_records(refs: list[Any], store: BlobStore | None) -> list[dict[str, Any]]:
    """The level's turn records; a missing blob is marked, not fatal."""
    out = []
    for ref in refs:
        if isinstance(ref, dict):
            out.append(dict(ref))
            continue
        record = _get_json(store, ref)
        out.append(record if isinstance(record, dict) else {"ref": ref, "missing": True})
    return out


def timed_turns(turns: list[dict[str, Any]], steps: list[Step]) -> list[dict[str, Any]]:
    """Each turn with when its model call ran (`model_started`, `model_seconds`)."""
    calls = {s.turn: s for s in steps if s.node == "generate_code" and s.model_calls}
    for t in turns:
        step = calls.get(t.get("turn"))
        if step is not None and step.ended is not None:
            t["model_started"] = step.started
            t["model_seconds"] = round(step.ended - step.started, 3)
    return turns


# -- facts about the whole run --------------------------------------------------------------------
def budgets(values: dict[str, Any], settings: dict[str, Any], record: RunRecord) -> list[dict]:
    """Each budget used against the one set: sub-calls, tokens, seconds, web calls, root turns
    and depth. The root's budget in state wins over the stored settings (it is what ran)."""
    budget = values.get("budget") or {}
    started = values.get("started_at")
    root, usage = record.root, record.usage
    limit_seconds = settings.get("max_seconds")
    if budget.get("deadline") and started:
        limit_seconds = round(budget["deadline"] - started, 3)

    def limit(key: str, setting: str) -> Any:
        return budget.get(key, settings.get(setting))

    rows = [
        ("sub-calls", usage.get("sub_calls", 0), limit("sub_calls", "max_sub_calls"), ""),
        ("tokens", total_tokens(usage), limit("total_tokens", "max_total_tokens"), ""),
        ("seconds", root.seconds if root else None, limit_seconds, "s"),
        ("web calls", usage.get("web_calls", 0), limit("web_calls", "max_web_calls"), ""),
        ("root turns", root.turn_count if root else 0, settings.get("max_turns"), ""),
        (
            "depth",
            max((lv.depth for lv in record.levels()), default=0),
            settings.get("max_depth"),
            "",
        ),
    ]
    return [{"name": n, "used": u, "limit": lim, "unit": unit} for n, u, lim, unit in rows]


def where_it_stopped(record: RunRecord, traces: dict[str, LevelTrace]) -> list[str]:
    """Lines saying where an unfinished run is: the root's last step and what was due next,
    and each deeper level that had not finished."""
    root = traces.get("")
    if root is None:
        return ["No checkpoint was written: the run stopped before its first step."]
    verb = "is at" if record.status == RUNNING else "stopped at"
    nxt = ", ".join(_count_names(root.next)) or "nothing (the root had finished)"
    lines = [
        f"The root {verb} step {root.last_step} (turn {root.values.get('turn') or 0}); "
        f"due next: {nxt}."
    ]
    open_levels = [lv for lv in record.levels()[1:] if lv.state != FINISHED]
    for lv in open_levels[:20]:
        lines.append(
            f"Sub-call {lv.path} (depth {lv.depth}) had not finished: turn "
            f"{len(lv.turns)}, due next: {', '.join(lv.next) or '?'}."
        )
    if len(open_levels) > 20:
        lines.append(f"... and {len(open_levels) - 20} more unfinished sub-calls.")
    return lines


REASONS = {
    "answered": "the model gave its answer",
    "stuck": "the loop kept repeating itself after a hint",
    "budget:turns": "the turn budget ran out",
    "budget:token": "the token budget ran out",
    "budget:time": "the time budget ran out",
    "budget:sub-call": "the sub-call budget ran out",
    "error": "a model call failed for good",
    "refused": "a budget was used up before it started",
    "unfinished": "it has not finished",
}


def why_it_ended(record: RunRecord) -> str:
    """One sentence on how the run ended (or where it is), for the reports."""
    if record.status == RUNNING:
        return "The run is still going."
    if record.status == "interrupted":
        return "The run was interrupted before it finished; it can be resumed."
    if record.status == "failed" and record.error:
        return f"The run failed: {record.error}"
    stop = record.stop_reason
    reason = REASONS.get(stop, stop)
    if stop == "stuck" or stop.startswith("budget:"):
        answered = record.status == "answered"
        reason += "; one closing call " + ("gave the answer" if answered else "gave no answer")
    return f"The run ended because {reason}."


def resume_command(run_id: str, db: Db) -> str:
    from rlm_research.graph.settings import Settings

    if is_postgres(db):  # the password, if any, is masked: give the real URL or RLM_DB_URL
        return f"rlm-research resume {run_id} --db '{describe(db)}'"
    db = Path(db)
    default = Path(Settings().data_dir) / "runs.sqlite"
    same = db.resolve() == default.resolve()
    return f"rlm-research resume {run_id}" + ("" if same else f" --db {db}")


# -- helpers --------------------------------------------------------------------------------------
def _status_of(result: Any) -> str:
    if result is None:
        return "unknown"
    return "answered" if (getattr(result, "answer", "") or "").strip() else "no_answer"


def _count_names(names: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [f"{n} x{c}" if c > 1 else n for n, c in counts.items()]


def _until(state: str, trace: LevelTrace) -> float | None:
    """Where an unfinished level's time stops: now while it runs, else its last checkpoint."""
    return time.time() if state == RUNNING else trace.updated


def _elapsed(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 3)


def _get_json(store: BlobStore | None, ref: str | None) -> Any:
    if not ref or store is None:
        return None
    try:
        return store.get_json(ref)
    except (BlobNotFound, ValueError):
        return None


def _get_text(store: BlobStore, ref: str | None) -> str | None:
    if not ref:
        return None
    try:
        return store.get_text(ref)
    except BlobNotFound:
        return None
