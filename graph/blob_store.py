"""Content-addressed blob store beside the checkpoint database (the SQLite backend's folder;
`graph.stores.pg_blobs` keeps the same interface in PostgreSQL).

Graph state is copied into every checkpoint, so nothing large lives there: contexts, transcripts,
cell outputs and sub-call prompts/answers are written here once, named by their SHA-256, and state
holds the hash. Writing the same bytes again costs a stat, not a copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


class BlobNotFound(KeyError):
    """A hash that state refers to has no file: the store was moved or damaged."""


class BlobStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, ref: str) -> Path:
        """The blob as a local file (the REPL worker reads contexts from files)."""
        return self.root / ref[:2] / ref[2:]

    def has(self, ref: str) -> bool:
        return self.path(ref).exists()

    def put_bytes(self, data: bytes) -> str:
        ref = hashlib.sha256(data).hexdigest()
        target = self.path(ref)
        if target.exists():
            return ref
        # On disk before any checkpoint can name it: after a power cut, a checkpoint that survived
        # must not point at an empty file.
        write_file(target, data, durable=True)
        return ref

    def get_bytes(self, ref: str) -> bytes:
        try:
            return self.path(ref).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"blob {ref[:12]} is missing from {self.root}") from None

    def put_text(self, text: str) -> str:
        return self.put_bytes(text.encode("utf-8", "surrogatepass"))

    def get_text(self, ref: str) -> str:
        return self.get_bytes(ref).decode("utf-8", "surrogatepass")

    def put_json(self, value: Any) -> str:
        return self.put_bytes(json.dumps(value, sort_keys=True, ensure_ascii=False).encode())

    def get_json(self, ref: str) -> Any:
        return json.loads(self.get_bytes(ref))

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


def write_file(target: Path, data: bytes, *, durable: bool) -> None:
    """Write then rename: a crash mid-write never leaves a truncated blob under a valid name.
    `durable`: fsync before the rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
