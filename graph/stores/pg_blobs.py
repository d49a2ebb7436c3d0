"""The blob store in PostgreSQL: the same interface as the folder store, in two tables.

A blob is cut into 1 MB chunks (`rlm_blob_chunks`) so a 40 MB context is forty rows, not one
giant value, and gets one row in `rlm_blobs` written last in the same transaction: a hash found
there is complete. Writes are idempotent by hash (ON CONFLICT DO NOTHING), and a hash this
process already wrote or saw is not sent again, so writing the same bytes twice costs a lookup.

The REPL worker never talks to the database: `path()` copies a blob into a local cache folder
(write then rename) and hands the worker that file, as the folder store does.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from rlm_research.graph.blob_store import BlobNotFound, BlobStore, write_file
from rlm_research.graph.stores.postgres import cursor

CHUNK_BYTES = 1 << 20
KNOWN_MAX = 200_000  # hashes remembered per process (a long-lived server forgets, then asks)

_known: set[tuple[str, str]] = set()  # (url, hash) present in the database, for this process
_known_lock = threading.Lock()


class PgBlobStore(BlobStore):
    def __init__(self, url: str, cache_dir: str | os.PathLike[str]) -> None:
        # `root` is the local cache: side journals and the worker's files live beside it.
        super().__init__(cache_dir)
        self.url = url

    def has(self, ref: str) -> bool:
        if (self.url, ref) in _known:
            return True
        with cursor(self.url) as cur:
            found = cur.execute("SELECT 1 FROM rlm_blobs WHERE hash = %s", (ref,)).fetchone()
        if found:
            self._remember(ref)
        return found is not None

    def put_bytes(self, data: bytes) -> str:
        ref = hashlib.sha256(data).hexdigest()
        if (self.url, ref) in _known:
            return ref
        # Ask first only when the answer saves sending megabytes; a small blob costs the same
        # round trip either way, and the insert below is idempotent.
        if len(data) > CHUNK_BYTES and self.has(ref):
            return ref
        view = memoryview(data)
        chunks = [
            (ref, i, view[start : start + CHUNK_BYTES])
            for i, start in enumerate(range(0, max(len(data), 1), CHUNK_BYTES))
        ]
        with cursor(self.url, transaction=True) as cur:
            cur.executemany(
                "INSERT INTO rlm_blob_chunks (hash, seq, data) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                chunks,
            )
            cur.execute(
                "INSERT INTO rlm_blobs (hash, size, chunks, created) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (ref, len(data), len(chunks), time.time()),
            )
        self._remember(ref)
        return ref

    def get_bytes(self, ref: str) -> bytes:
        cached = super().path(ref)
        try:
            return cached.read_bytes()
        except FileNotFoundError:
            pass
        with cursor(self.url) as cur:
            row = cur.execute("SELECT chunks FROM rlm_blobs WHERE hash = %s", (ref,)).fetchone()
            if row is None:
                raise BlobNotFound(f"blob {ref[:12]} is missing from the database")
            cur.execute("SELECT data FROM rlm_blob_chunks WHERE hash = %s ORDER BY seq", (ref,))
            parts = [bytes(r[0]) for r in cur.fetchall()]
        if len(parts) != row[0]:
            raise BlobNotFound(f"blob {ref[:12]} has {len(parts)} of its {row[0]} chunks")
        self._remember(ref)
        return b"".join(parts)

    def path(self, ref: str) -> Path:
        """The blob as a file in the local cache, copied there from the database if needed
        (a path that does not exist when the database lacks it too)."""
        target = super().path(ref)
        if target.exists():
            return target
        try:
            data = self.get_bytes(ref)
        except BlobNotFound:
            return target
        write_file(target, data, durable=False)  # a cache: the database holds the blob
        return target

    def size_bytes(self) -> int:
        """Bytes of every blob in the database (all runs)."""
        with cursor(self.url) as cur:
            return int(cur.execute("SELECT coalesce(sum(size), 0) FROM rlm_blobs").fetchone()[0])

    def _remember(self, ref: str) -> None:
        with _known_lock:
            if len(_known) >= KNOWN_MAX:
                _known.clear()
            _known.add((self.url, ref))
