"""Calls a cell makes to the host (`web_search`, `fetch_url`): the sandboxed worker has no
network, so the host makes them, counts them against the run's budget, and journals each result
so a cell that runs again after a crash gets the stored result instead of searching again."""

from __future__ import annotations

import hashlib
import json

from graph.blob_store import BlobStore
from graph.settings import Settings
from nodes.durable_cell import Journal
from tools.repl_host import HostCall, ReplWorker, WorkerEvent
from tools.web_search import WebError, call_web


def answer_host_call(
    worker: ReplWorker,
    call: HostCall,
    call_id: str,
    journal: Journal,
    calls_left: int,
    settings: Settings,
    store: BlobStore,
) -> tuple[WorkerEvent, list[str] | None, int]:
    """Answer one host call. Returns the worker's next event, the new journal entry (if a call
    was made) and how many web calls were spent (0 when replayed from the journal)."""
    digest = hashlib.sha256(json.dumps([call.fn, call.args], sort_keys=True).encode()).hexdigest()
    for entry in journal:
        if entry[0] == call_id and entry[1] == digest:
            stored = store.get_json(entry[2])
            return worker.host_result(stored["result"], stored["error"]), None, 0
    if calls_left <= 0:
        error = f"{call.fn} refused: the budget of {settings.max_web_calls} web calls is used up"
        return worker.host_result(None, error), None, 0
    try:
        outcome = {"result": call_web(call.fn, call.args, settings), "error": None}
    except WebError as exc:
        outcome = {"result": None, "error": str(exc)}
    ref = store.put_json(outcome)
    return worker.host_result(outcome["result"], outcome["error"]), [call_id, digest, ref], 1
