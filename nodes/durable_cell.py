"""What lets a cell survive its process: namespace snapshots and the sub-call journal.

After every cell the worker's namespace is stored in the blob store, one content-addressed blob
per variable, so an unchanged 40 MB value is never written twice. When `execute` finds no live
worker (the process died, or a cell crashed its worker), it starts a fresh one from the snapshot
taken before the current cell and runs the cell again; the journal of sub-calls this cell already
had answered (matched by request id, i.e. call order, and request hash) answers them at once, so
no finished model call is paid for twice. A request whose hash differs is treated as new.
"""

from __future__ import annotations

from typing import Any

from graph.blob_store import BlobStore
from graph.state import RLMState, SubRequest
from tools.repl_host import ReplWorker, WorkerLimits, start_worker

Journal = list[list[str]]  # [request id, request hash, answer ref]


def save_snapshot(worker: ReplWorker, snapshot: dict[str, Any], store: BlobStore) -> str:
    """Fetch the values the store lacks, then store the snapshot's manifest; returns its ref."""
    missing = [h for h in snapshot["values"].values() if not store.path(h).exists()]
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
        if store.path(digest).exists():
            values[name] = store.get_bytes(digest)
    lost = [n for n in manifest["values"] if n not in values] + manifest.get("unpicklable", [])
    return worker, lost + worker.restore(values, manifest.get("modules", {}))


def load_journal(store: BlobStore, ref: str | None) -> Journal:
    return store.get_json(ref) if ref else []


def replayed(requests: list[SubRequest], journal: Journal) -> dict[str, str]:
    """Request id -> stored answer ref, for requests the journal holds with the same hash."""
    known = {entry[0]: (entry[1], entry[2]) for entry in journal}
    out = {}
    for req in requests:
        hit = known.get(req["id"])
        if hit and hit[0] == req["request_hash"]:
            out[req["id"]] = hit[1]
    return out
