"""What the guards read of a turn (`guards.Evidence`): the cell's result, the level's searches,
budgets left, and the level's `context` read by the host on demand, never by the worker."""

from __future__ import annotations

import functools
import time
from typing import Any

from rlm_research.graph.settings import Settings
from rlm_research.graph.state import RLMState
from rlm_research.graph.usage import reading_speed
from rlm_research.nodes import guards
from rlm_research.nodes.execute import remaining
from rlm_research.nodes.level_start import repeated_heading_kinds
from rlm_research.tools.record_fields import field_labels
from rlm_research.tools.text_outline import Outline
from rlm_research.tools.text_search import grep_lines, join_sources


def guard_evidence(
    state: RLMState,
    settings: Settings,
    store: Any,
    book: dict[str, Any],
    question: str,
    result: dict[str, Any] | None,
    final: str | None,
) -> guards.Evidence:
    """The turn as the guards read it; what the level printed before is read only on demand."""
    new_searches = cell_searches(result)
    left = remaining(state, settings)

    @functools.cache  # several guards may ask in one turn; the records are read once
    def earlier_output() -> str:
        records = (store.get_json(ref) for ref in state.get("trajectory") or [])
        return "\n".join(str(r.get("observation", "")) for r in records)

    return guards.Evidence(
        question=question,
        code=state.get("code") or [],
        result=result,
        final=final,
        searches=((book.get("searches") or []) + new_searches)[-8:],
        new_searches=new_searches,
        after_empty=bool(book.get("after_empty")),
        fired=list(book.get("fired") or []),
        loop_ran=list(book.get("ran") or []),
        sub_calls_left=left["sub_calls"],
        seconds_left=left["deadline"] - time.time(),
        reading_speed=reading_speed(state.get("usage")),
        earlier_output=earlier_output,
        search_lines=lambda pattern: search_lines(state, store, pattern),
        heading_kinds=lambda: context_heading_kinds(state, store),
        headings_at=functools.cache(lambda: context_headings(state, store)),
        field_labels=functools.cache(lambda: context_field_labels(state, store)),
        text_lines=functools.cache(lambda: context_text(state, store).splitlines()),
    )


def cell_searches(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The cell's `grep` calls as the worker reported them, kept to their expected shape (the
    worker's messages are checked, never trusted)."""
    out = []
    for item in ((result or {}).get("searches") or [])[-8:]:
        if isinstance(item, dict) and isinstance(item.get("hits"), int):
            pattern, over = str(item.get("pattern", ""))[:200], str(item.get("over", ""))[:10]
            out.append({"pattern": pattern, "hits": item["hits"], "over": over})
    return out


def search_lines(state: RLMState, store: Any, pattern: str) -> list[str]:
    """The lines of `context` that `grep(pattern)` returns, read by the host."""
    refs = state.get("context_refs") or {}
    if len(refs) != 1:  # several sources: `context` joins them with headers; keep it simple
        return []
    text = store.get_text(next(iter(refs.values())))
    return grep_lines(pattern, text.splitlines())[:10_000]


def context_headings(state: RLMState, store: Any) -> dict[int, str]:
    """The heading lines of `context` by line number (from 1), as the worker's outline sees them."""
    lines = context_text(state, store).splitlines()
    return {i + 1: lines[i] for i in Outline(lines).at}


def context_field_labels(state: RLMState, store: Any) -> list[str]:
    """The labels that open a field in most lines of `context`, when its lines are records."""
    return field_labels(context_text(state, store).splitlines())


def context_heading_kinds(state: RLMState, store: Any) -> list[tuple[int, str]]:
    """The repeated kinds of heading of `context`, as its first message listed them."""
    return repeated_heading_kinds(context_text(state, store))


def context_text(state: RLMState, store: Any) -> str:
    """`context` as the worker sees it: the level's sources joined with their headers."""
    refs = state.get("context_refs") or {}
    return join_sources({name: store.get_text(ref) for name, ref in refs.items()})
