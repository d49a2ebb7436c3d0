"""The first step of every run level: move the input into the blob store, set the level's
budget, and write the opening messages. Runs inside `generate_code` on its first turn."""

from __future__ import annotations

import time
import uuid
from typing import Any

from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.settings import Settings
from rlm_research.graph.state import Budget, RLMState
from rlm_research.nodes import prompts
from rlm_research.nodes.model_call import put_message
from rlm_research.tools.text_outline import Outline, heading_kinds
from rlm_research.tools.text_search import header_name, join_sources, source_variables

OUTLINE_LISTED = 8  # a text with up to this many headings has them all listed, else by kind
OUTLINE_KINDS = 5
BIG_CONTEXT_CHARS = 24_000  # above this, the prompt shows the chunk-and-batch pattern
CHUNK_CHARS = 20_000
SOURCES_LISTED = 30  # a folder of hundreds of files lists the first few


def ingest_context(context: Any, store: BlobStore) -> dict[str, str]:
    """A user's context (text, or {name: text} for several sources) as blob refs by source
    name; each source's REPL variable is derived from its name (`source_variables`)."""
    if context is None or context == "":
        return {}
    if isinstance(context, str):
        return {"context": store.put_text(context)}
    if isinstance(context, (list, tuple)):
        context = {f"source_{i + 1}": text for i, text in enumerate(context)}
    if isinstance(context, dict):
        refs: dict[str, str] = {}
        for name, text in context.items():
            # Named as its header will show it; two names that read the same there ("a\tb" and
            # "a b", 1 and "1") are told apart.
            key, n = header_name(str(name)), 2
            while key in refs:
                key, n = header_name(f"{name} ({n})"), n + 1
            refs[key] = store.put_text(str(text))
        return refs
    return {"context": store.put_text(str(context))}


def start_level(state: RLMState, settings: Settings, store: BlobStore) -> dict[str, Any]:
    depth = state.get("depth", 0)
    question = state.get("question")
    question_ref = state.get("question_ref") or store.put_text(question or "")
    context_refs = state.get("context_refs") or ingest_context(state.get("context"), store)
    now = time.time()
    budget: Budget = state.get("budget") or {
        "sub_calls": settings.max_sub_calls,
        "total_tokens": settings.max_total_tokens,
        "deadline": now + settings.max_seconds,
        "web_calls": settings.max_web_calls,
    }
    update: dict[str, Any] = {
        "level_id": uuid.uuid4().hex,
        "started_at": now,
        "depth": depth,
        "budget": budget,
        "question_ref": question_ref,
        "context_refs": context_refs,
        "context": None,  # the text now lives in the blob store; keep it out of checkpoints
        "turn": 0,
        "cell": 0,
    }
    if depth < settings.max_depth:
        text = question if question is not None else store.get_text(question_ref)
        update["transcript"] = opening_messages(text, context_refs, settings, store)
    return update


def opening_messages(
    question: str, context_refs: dict[str, str], settings: Settings, store: BlobStore
) -> list[str]:
    texts = {name: store.get_text(ref) for name, ref in context_refs.items()}
    joined = join_sources(texts)
    sources = ""
    if len(texts) > 1:
        sources = prompts.SOURCES.format(n=len(texts), listed=listed_sources(list(texts)))
    tip = ""
    if len(joined) > BIG_CONTEXT_CHARS:
        # The real question in the example: small models copy the snippet word for word.
        short = question.strip().replace('"', "'").replace("\n", " ")[:200]
        tip = prompts.BIG_CONTEXT_TIP.format(chunk=CHUNK_CHARS, question=short)
    outline = outline_note(joined)
    system = prompts.SYSTEM.format(big_context_tip=tip, max_output_chars=settings.max_output_chars)
    first = prompts.FIRST_USER.format(
        question=question,
        kind="string",
        chars=len(joined),
        lines=joined.count("\n") + 1 if joined else 0,
        sources=sources,
        preview=joined[:300] + (" ..." if len(joined) > 300 else ""),
        outline=outline,
    )
    return [put_message(store, "system", system), put_message(store, "user", first)]


def listed_sources(names: list[str]) -> str:
    """`report_txt` (docs/report.txt), ...: the first few sources' variables and names."""
    pairs = [
        var if var == header_name(name) else f"{var} ({header_name(name)[:80]})"
        for name, var in list(source_variables(names).items())[:SOURCES_LISTED]
    ]
    more = len(names) - len(pairs)
    return ", ".join(pairs) + (f", and {more:,} more (their names: `sources`)" if more else "")


def repeated_heading_kinds(text: str) -> list[tuple[int, str]]:
    """(how many, the first) of each kind of heading that occurs more than once, as the first
    message lists them (the guards read them too)."""
    lines = text.splitlines()
    kinds = heading_kinds(lines, Outline(lines))
    return [(len(ix), lines[ix[0]].strip()) for ix in kinds if len(ix) > 1]


def outline_note(text: str) -> str:
    """The first message's note on the text's headings, "" for a text without any (so a run
    over plain lines gets the same first message as before): each heading with its line
    number when there are few, else the commonest kinds, how many of each and where."""
    lines = text.splitlines()
    outline = Outline(lines)
    if not outline.at:
        return ""

    def shown(i: int) -> str:
        return f"{i + 1}: {lines[i].strip()[:90]!r}"

    if len(outline.at) <= OUTLINE_LISTED:
        items = "\n".join(f"- {shown(i)}" for i in outline.at)
        return prompts.OUTLINE_ALL.format(items=items) + prompts.OUTLINE_USE
    kinds = [ix for ix in heading_kinds(lines, outline) if len(ix) > 1][:OUTLINE_KINDS]
    if not kinds:  # all different: the first few, as they come
        items = "\n".join(f"- {shown(i)}" for i in outline.at[:OUTLINE_LISTED]) + "\n- ..."
    else:
        items = "\n".join(
            f"- {len(ix)} like {lines[ix[0]].strip()[:90]!r} (the first at line {ix[0] + 1}, "
            f"the last at line {ix[-1] + 1})"
            for ix in kinds
        )
    return prompts.OUTLINE_KINDS.format(total=len(outline.at), items=items) + prompts.OUTLINE_USE
