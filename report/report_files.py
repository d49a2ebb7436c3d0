"""Where a run's report files live (`<data_dir>/reports/<run_id>.md`, `.jsonl`, `.html`) and how
they are written (atomically: a reader never sees half a file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def report_paths(data_dir: str | Path, run_id: str) -> tuple[Path, Path]:
    folder = Path(data_dir) / "reports"
    return folder / f"{run_id}.md", folder / f"{run_id}.jsonl"


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
