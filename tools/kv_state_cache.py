"""A bounded RAM cache of llama.cpp KV states for the embedded model (tools/local_model.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class BoundedStateCache:
    """A RAM cache of llama.cpp KV states (the `llama_cpp.BaseLlamaCache` protocol), bounded by
    number of states and by their real bytes.

    llama-cpp-python's `LlamaRAMCache` counts only the KV bytes of an entry, but each state also
    carries a copy of the logits buffer (n_batch x n_vocab floats, ~300 MB for Qwen's vocabulary):
    a "2 GB" cache grew to 18 GB. Here states are saved without it (see
    `local_model._make_llama_class`).

    Eviction keeps conversations that are being continued: an entry that is a prefix of a newly
    saved one is dropped (the new one covers it) and hands on its reuse count; over the limits,
    the entry with the fewest recent reuses goes first, oldest first among equals. So a burst of
    one-shot sub-calls evicts its own states, not the root conversation's prefix.
    """

    def __init__(self, max_states: int = 8, capacity_bytes: int = 3 << 30) -> None:
        self.max_states = max_states
        self.capacity_bytes = capacity_bytes
        self._entries: dict[tuple[int, ...], _Entry] = {}
        self._tick = 0

    @property
    def cache_size(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return True  # llama.cpp tests `if self.cache:`; an empty cache is still attached

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
            victim = min((k for k in self._entries if k != key), key=self._keep_score)
            del self._entries[victim]

    def _keep_score(self, key: tuple[int, ...]) -> tuple[int, int]:
        e = self._entries[key]
        # Reuse protects an entry only while it is fresh (~2 ticks per model call), so the
        # conversation of a finished run does not stay pinned forever.
        fresh = self._tick - e.last_used <= 4 * self.max_states
        return (e.reuses if fresh else 0, e.last_used)


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
