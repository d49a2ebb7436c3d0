"""Benchmark: does a `sub_lm_batched` batch run in parallel?

A stub OpenAI-compatible server on 127.0.0.1 answers every child prompt after 0.5 s and the root
model at once, over real HTTP through ChatOpenAI (`openai:stub` for root and sub model). The root's
one cell sends a batch of N prompts and then calls FINAL, so a run is: one instant root call, the
batch, and the framework's own work. Each configuration (batch size x max_parallel) runs
`--repeats` times, interleaved so that machine noise spreads over all of them alike.

    python -m bench.batch_parallel [--repeats 3] [--sizes 8 16] [--parallel 16 1] [--delay 0.5]
                                   [--pool 16]

LangGraph runs a superstep's parallel tasks (here: the batch's `Send`s) on a thread pool of
`max_concurrency` threads from the run's config; without one it is Python's default,
min(32, nproc + 4), i.e. 6 threads on a 2-core machine, whatever `max_parallel` says. `run()` sets
no `max_concurrency`, so rows with pool `default` show what users get; the `--pool` rows run the
same `run()` call with `max_concurrency` put into the config LangGraph inherits (the
`var_child_runnable_config` context variable) to show what the batch costs without that cap.

Columns: `run s` is the whole `run()` call; `batch s` is from the root's `sub_calls` progress
event to the last `child_done` event; `server s` is from the first child request reaching the
stub to the last child reply leaving it; `ideal s` is ceil(N / max_parallel) x delay. `speed-up`
compares the batch time with the max_parallel=1 (sequential) row of the same batch size.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from langchain_core.runnables.config import var_child_runnable_config
from rlm_research.bench.stub_openai import Fault, RuleResponder, StubOpenAI
from rlm_research.graph import Settings
from rlm_research.graph.api import stream

CHILD = "bench child"
ROOT_CELL = """```python
rs = sub_lm_batched(["{child} " + str(i) for i in range({n})])
FINAL(str(len(rs)) + " answers")
```"""


class ChildClock:
    """The stub's responder: child prompts get a delayed reply (arrival times noted), the root
    an instant cell with the batch."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.arrivals: list[float] = []
        root = ROOT_CELL.replace("{child}", CHILD)
        self.responder = RuleResponder(
            [
                (rf"^{CHILD} \d+", self.child),
                (r"^Question: batch of (?P<n>\d+)", root),
            ],
            default='```python\nFINAL("unexpected")\n```',
        )

    def child(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> Fault:
        with self.lock:
            self.arrivals.append(time.monotonic())
        return Fault.delay(self.delay, "ok")

    def take(self) -> list[float]:
        with self.lock:
            out, self.arrivals = self.arrivals, []
        return out


DEFAULT_POOL = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default max_workers


def one_run(
    n: int,
    max_parallel: int,
    base_url: str,
    data_dir: Path,
    clock: ChildClock,
    pool: int | None = None,
) -> dict:
    if pool is None:
        return _one_run(n, max_parallel, base_url, data_dir, clock)
    token = var_child_runnable_config.set({"max_concurrency": pool})
    try:
        return _one_run(n, max_parallel, base_url, data_dir, clock)
    finally:
        var_child_runnable_config.reset(token)


def _one_run(n: int, max_parallel: int, base_url: str, data_dir: Path, clock: ChildClock) -> dict:
    settings = Settings(
        model="openai:stub",
        sub_model="openai:stub",
        base_url=base_url,
        max_parallel=max_parallel,
        max_turns=3,
        data_dir=str(data_dir),
    )
    clock.take()
    t0 = time.monotonic()
    t_sub = t_done = None
    result = None
    for event in stream(f"batch of {n}", "some context text " * 50, settings=settings):
        now = time.monotonic()
        kind = event["kind"]
        if kind == "sub_calls" and t_sub is None:
            t_sub = now
        elif kind == "child_done":
            t_done = now
        elif kind == "result":
            result = event["result"]
    t_end = time.monotonic()
    arrivals = clock.take()
    assert result is not None and result.answer == f"{n} answers", result
    assert len(arrivals) == n, f"{len(arrivals)} child calls for a batch of {n}"
    assert t_sub is not None and t_done is not None
    return {
        "run": t_end - t0,
        "batch": t_done - t_sub,
        "server": max(arrivals) + clock.delay - min(arrivals),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--parallel", type=int, nargs="+", default=[16, 1])
    parser.add_argument("--delay", type=float, default=0.5, help="seconds per child call")
    parser.add_argument(
        "--pool",
        type=int,
        nargs="*",
        default=[16],
        help="extra rows for the largest max_parallel with LangGraph's thread pool set to these",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("RLM_API_KEY", "bench")

    print(f"# batch_parallel  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"# machine: {platform.node()}, nproc={os.cpu_count()}, "
        f"python {platform.python_version()}, {platform.platform()}"
    )
    print(f"# stub delay per child call: {args.delay} s, repeats: {args.repeats}")
    print(f"# LangGraph's default thread pool here: min(32, nproc + 4) = {DEFAULT_POOL} threads")
    top = max(args.parallel)
    configs: list[tuple[int, int, int | None]] = []
    for n in args.sizes:
        configs += [(n, p, None) for p in args.parallel]
        configs += [(n, top, pool) for pool in args.pool]
    samples: dict[tuple[int, int, int | None], list[dict]] = {c: [] for c in configs}
    started = time.monotonic()
    clock = ChildClock(args.delay)
    with (
        tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp,
        StubOpenAI(clock.responder) as stub,
    ):
        one_run(2, 16, stub.base_url, Path(tmp), clock)  # warm-up: imports, first connections
        for _ in range(args.repeats):
            for n, p, pool in configs:
                samples[(n, p, pool)].append(
                    one_run(n, p, stub.base_url, Path(tmp), clock, pool=pool)
                )

    header = (
        f"{'batch':>5} {'max_parallel':>12} {'pool':>8} {'run s':>7} {'batch s':>8} "
        f"{'server s':>9} {'ideal s':>8} {'speed-up':>9}  batch s per repeat"
    )
    print(header)
    print("-" * len(header))
    for n, p, pool in configs:
        rows = samples[(n, p, pool)]
        med = {k: statistics.median(r[k] for r in rows) for k in ("run", "batch", "server")}
        seq = samples.get((n, 1, None))
        speedup = statistics.median(r["batch"] for r in seq) / med["batch"] if seq else math.nan
        ideal = math.ceil(n / p) * args.delay
        each = " ".join(f"{r['batch']:.2f}" for r in rows)
        print(
            f"{n:>5} {p:>12} {pool or 'default':>8} {med['run']:>7.2f} {med['batch']:>8.2f} "
            f"{med['server']:>9.2f} {ideal:>8.2f} {speedup:>8.1f}x  {each}"
        )
    print(f"# total benchmark time: {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
