"""Calls a cell makes to the host (`web_search`, `fetch_url`): the sandboxed worker has no
network, so the host makes them, counts them against the run's budget, and journals each result
(in state and, at once, in a side journal file) so a cell that runs again after a crash gets the
stored result instead of searching again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.settings import Settings
from rlm_research.nodes.durable_cell import append_side_journal, take
from rlm_research.tools.repl_host import HostCall, ReplWorker, WorkerEvent
from rlm_research.tools.web_search import WebError, WebOptions, call_web


def answer_host_call(
    worker: ReplWorker,
    call: HostCall,
    call_id: str,
    pool: dict[str, list[list[Any]]],
    calls_left: int,
    settings: Settings,
    store: BlobStore,
    side_journal: Path,
) -> tuple[WorkerEvent, list[str] | None, int]:
    """Answer one host call. Returns the worker's next event, the journal entry of a call made
    now (None when replayed or refused), and how many web calls to add to usage."""
    digest = hashlib.sha256(json.dumps([call.fn, call.args], sort_keys=True).encode()).hexdigest()
    stored = take(pool, digest)
    if stored is not None:
        ref, counted = stored
        outcome = store.get_json(ref)
        entry = None if counted else [call_id, digest, ref]
        return worker.host_result(outcome["result"], outcome["error"]), entry, int(not counted)
    if calls_left <= 0:
        error = f"{call.fn} refused: the budget of {settings.max_web_calls} web calls is used up"
        return worker.host_result(None, error), None, 0
    try:
        web = WebOptions(
            settings.web_provider,
            settings.web_base_url,
            settings.web_timeout,
            url_guard=settings.url_guard,
            url_guard_allow=settings.url_guard_allow,
        )
        outcome = {"result": call_web(call.fn, call.args, web), "error": None}
    except WebError as exc:
        outcome = {"result": None, "error": str(exc)}
    entry = [call_id, digest, store.put_json(outcome)]
    append_side_journal(side_journal, entry)
    return worker.host_result(outcome["result"], outcome["error"]), entry, 1
