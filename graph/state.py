"""Graph state. Only small values live here (hashes into the blob store, counters, short code):
SqliteSaver copies the whole state into every checkpoint."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from rlm_research.graph.usage import Usage, add_usage
from typing_extensions import TypedDict  # pydantic builds JSON schemas from it on Python < 3.12


def merge_results(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Sub-call results arrive from parallel `spawn_subgraph` tasks; `None` clears the batch."""
    if new is None:
        return {}
    return {**(old or {}), **new}


class Budget(TypedDict):
    """What this level's whole subtree may still spend. A child gets what is left at spawn time."""

    sub_calls: int
    total_tokens: int
    deadline: float  # epoch seconds
    web_calls: int


class SubRequest(TypedDict):
    id: str  # "<cell>.<index>": deterministic order, so resumed children match their checkpoints
    prompt_ref: str
    context_ref: str | None
    request_hash: str


class SubResult(TypedDict):
    answer_ref: str
    stop_reason: str
    tree_ref: str  # the child's call tree, in the blob store


class RLMInput(TypedDict, total=False):
    """What a caller passes. `question`/`context` from users; the `*_ref` form from a parent."""

    question: str
    context: Any  # str, or {name: text} for several sources
    question_ref: str
    context_refs: dict[str, str]
    depth: int
    budget: Budget


class RLMState(RLMInput, total=False):
    level_id: str  # names this level's REPL worker in the live-worker registry
    started_at: float
    turn: int
    transcript: Annotated[list[str], operator.add]  # message blob refs, append-only
    code: list[str]  # the code blocks of the latest reply, stored before they run
    cell: int  # how many cells have started at this level
    seq: int  # how many sub_lm calls this level has made: request ids are "<cell>.<seq>.<i>"
    pending_ref: str | None  # the batch the waiting cell asked for: a list of SubRequest
    batch_results_ref: str | None  # its answers from slices already done
    sub_results: Annotated[dict[str, SubResult], merge_results]  # answers of the current slice
    cell_result_ref: str | None
    snapshot_ref: str | None  # the REPL namespace after the last finished cell
    journal_ref: str | None  # sub-calls answered so far in the current cell
    answers_ref: str | None  # {request hash: answer ref} of the level's answered sub-calls
    recent: list[str]  # signatures of recent turns, for stuck detection
    hinted: bool
    hint_offers: bool  # the stuck notice's advice offered a value as FINAL
    answer_asked_at: int  # the turn after which the loop asked for the answer in words
    guards: dict[str, Any]  # the guards' bookkeeping at this level (nodes/guards)
    child_trees: Annotated[list[str], operator.add]  # one ref per batch: a list of tree refs
    trajectory: Annotated[list[str], operator.add]  # per-turn record refs
    own_usage: Annotated[Usage, add_usage]  # model calls made by this level
    usage: Annotated[Usage, add_usage]  # this level plus every descendant
    answer: str | None
    stop_reason: str | None
    tree_ref: str | None
    call_tree: dict[str, Any] | None  # materialised at the root only, in the final checkpoint


class RLMOutput(TypedDict, total=False):
    answer: str
    stop_reason: str
    usage: Usage
    call_tree: dict[str, Any]
    tree_ref: str
