"""What lets a cell survive its process: namespace snapshots and the sub-call journal.

After every cell the worker's namespace is stored in the blob store, one content-addressed blob
per variable, so an unchanged 40 MB value is never written twice. When `execute` must run a cell
again (the process died, a cell crashed its worker, or a node failed half way), it starts a fresh
worker from the snapshot taken before the cell and gives it a replay pool: the sub-calls and web
calls this cell already had answered. A call whose request hash is in the pool gets the stored
answer at once, so no finished model call or search is paid for twice; a request whose hash
differs is new. Matching is by hash, not position, so a cell that builds its batch from a set
(whose order changes from process to process) still replays.

Sub-call answers reach the journal through graph state (each batch is checkpointed). Web calls
are answered inside one `execute` step, so each result is also appended at once to a side
journal file: a crash in the middle of a cell keeps the searches it had made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.state import RLMState
from rlm_research.tools.repl_host import ReplWorker, WorkerLimits, start_worker

Journal = list[list[str]]  # [request id, request hash, answer ref]


def save_snapshot(worker: ReplWorker, snapshot: dict[str, Any], store: BlobStore) -> str:
    """Fetch the values the store lacks, then store the snapshot's manifest; returns its ref."""
    missing = [h for h in snapshot["values"].values() if not store.has(h)]
    for data in worker.fetch(missing).values():
        store.put_bytes(data)  # named by its own SHA-256: the hash the manifest lists
    return store.put_json(snapshot)


def rebuild_worker(
    level: str, state: RLMState, store: BlobStore, limits: WorkerLimits
) -> tuple[ReplWorker, list[str]]:
    """A fresh worker with the sources and, if there is one, the last snapshot. Returns it and
    the names of values that could not come back (unpicklable, or lost with a crashed cell)."""
    paths = {n: str(store.path(r)) for n, r in (state.get("context_refs") or {}).items()}
    worker = start_worker(level, paths, limits)
    ref = state.get("snapshot_ref")
    if not ref:
        return worker, []
    manifest = store.get_json(ref)
    values = {}
    for name, digest in manifest["values"].items():
        if store.has(digest):
            values[name] = store.get_bytes(digest)
    lost = [n for n in manifest["values"] if n not in values] + manifest.get("unpicklable", [])
    return worker, lost + worker.restore(values, manifest.get("modules", {}))


def load_journal(store: BlobStore, ref: str | None) -> Journal:
    return store.get_json(ref) if ref else []


def replay_pool(journal: Journal, side: Journal) -> dict[str, list[list[Any]]]:
    """Request hash -> [[answer ref, counted?], ...] in call order. Side-journal entries missing
    from the state journal were paid for but never counted in usage: `counted` is False."""
    pool: dict[str, list[list[Any]]] = {}
    known = {(e[0], e[1]) for e in journal}
    for entry in journal:
        pool.setdefault(entry[1], []).append([entry[2], True])
    for entry in side:
        if (entry[0], entry[1]) not in known:
            pool.setdefault(entry[1], []).append([entry[2], False])
    return pool


def take(pool: dict[str, list[list[Any]]], request_hash: str) -> tuple[str, bool] | None:
    """The stored answer for one request with this hash (each stored answer serves once)."""
    entries = pool.get(request_hash)
    if not entries:
        return None
    ref, counted = entries.pop(0)
    return ref, counted


def side_journal_path(store: BlobStore, level: str, cell: int) -> Path:
    return store.root.parent / "journals" / f"{level}.{cell}.jsonl"


def append_side_journal(path: Path, entry: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_side_journal(path: Path) -> Journal:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            break  # a line torn by the crash: everything before it is whole
    return entries
