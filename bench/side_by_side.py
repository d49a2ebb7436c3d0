"""Benchmark: this project (`ours`) and the official RLM implementation (`official`, PyPI `rlms`,
import `rlm`) side by side, against the same stub OpenAI-compatible server on 127.0.0.1.

1. Framework overhead per turn. An instant, stateless model: while the request holds fewer than
   N-1 assistant messages it replies with a ```repl cell `print(len(context), 'turn K')`, then it
   finishes.
   Runs of N=2 and N=`--turns` (20) turns; overhead per turn = (tN - t2) / (N - 2), per repeat,
   then the median. Ours is `graph.api.run` (SQLite checkpoints, blob store, sandboxed REPL
   worker); official is `rlm.RLM(environment="local", max_depth=1).completion(...)`. The
   official's wall time steps by 0.5 s (its teardown waits for a socketserver poll), so its
   per-turn figure uses the `execution_time` it reports itself ("in-call"); ours' is wall time.
2. A batch of `--batch` (8, 16) sub-calls: the root's first cell is
   `rs = llm_query_batched([...]); print(len(rs))`; each child call takes `--delay` (0.5 s) at the
   stub. `run s` is the whole call; `server span s` is from the first child request reaching the
   stub to the last child reply leaving it (the ideal is one delay: both systems allow 16 at once).
3. Loading a `--mb` (40) MB text: turn 1 prints its length, turn 2 finishes. Memory is the
   summed VmRSS of the child process and all its descendants (REPL workers, bwrap), sampled from
   /proc every ~10 ms by the parent; `before` is taken by the child just before the run, after the
   context string exists, so `added` = peak - before. `host peak` is the child's own ru_maxrss,
   which catches spikes shorter than the sampling period.

How each system finishes: ours reads the prose line `FINAL(done)`. rlms 0.1.3 has no FINAL():
its prompt teaches `answer["content"] = ...; answer["ready"] = True` in a ```repl block, and a
prose `FINAL(done)` makes it use all its iterations and return the literal text "FINAL(done)"
from its closing call. So the stub ends each system the way that system's own prompt asks (the
question names the system); both answers are checked to be "done", and the parent checks the
number of model calls each child made, so a broken run can't print a number.

Every (measurement, system, repeat) is its own child process (`--child '<json>'`, one JSON line
out), so memory starts clean and the official code runs with `bench.official.child_env()` (its
pinned clients on PYTHONPATH). Each child first makes one small untimed run, so lazy imports and
first connections are not counted. Systems alternate which goes first within each repeat.

    python -m bench.side_by_side [--repeats 3] [--turns 20] [--batch 8 16] [--delay 0.5] [--mb 40]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from rlm_research.bench.official import INSTALL, OFFICIAL_PATH, REPO, check_installed, child_env
from rlm_research.bench.stub_openai import Fault, StubOpenAI, last_user_text, message_text

CHILD, WARM_CHILD = "bench child", "warm child"  # warm-up children are instant and not timed
QUESTION = "side-by-side {kind} n={n} for {system}"
QUESTION_RE = re.compile(r"side-by-side (turns|batch|warmbatch) n=(\d+) for (ours|official)")
# The turn number keeps cells distinct: ours ends a run that repeats the same code and output
# (a stuck-loop guard), which a 20-turn run of one identical cell would trip.
PRINT_CELL = "```repl\nprint(len(context), 'turn {turn}')\n```"
BATCH_CELL = '```repl\nrs = llm_query_batched(["{prefix} " + str(i) for i in range({n})])\n'
BATCH_CELL += "print(len(rs))\n```"
FINISH = {
    "ours": "FINAL(done)",
    "official": '```repl\nanswer["content"] = "done"\nanswer["ready"] = True\n```',
}
MB = 1_000_000


# ---------------------------------------------------------------------------------------------
# The stub's model (parent process)


class Model:
    """Stateless replies from the request alone; notes when timed child calls arrive."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.arrivals: list[float] = []

    def __call__(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> str | Fault:
        last = last_user_text(messages)
        if last.startswith(CHILD):
            with self.lock:
                self.arrivals.append(time.monotonic())
            return Fault.delay(self.delay, "ok")
        if last.startswith(WARM_CHILD):
            return "ok"
        match = QUESTION_RE.search("\n".join(message_text(m) for m in messages))
        if match is None:  # fail loudly: the harness sent something it did not plan
            return Fault.status(500, message="side_by_side: unexpected request")
        kind, n, system = match.group(1), int(match.group(2)), match.group(3)
        turns_done = sum(1 for m in messages if m.get("role") == "assistant")
        if kind == "turns" and turns_done < n - 1:
            return PRINT_CELL.replace("{turn}", str(turns_done + 1))
        if kind in ("batch", "warmbatch") and turns_done == 0:
            prefix = CHILD if kind == "batch" else WARM_CHILD
            return BATCH_CELL.replace("{prefix}", prefix).replace("{n}", str(n))
        return FINISH[system]

    def take(self) -> list[float]:
        with self.lock:
            out, self.arrivals = self.arrivals, []
        return out


# ---------------------------------------------------------------------------------------------
# Child process: one measurement of one system


def tree_rss(pid: int) -> int:
    """Summed VmRSS (bytes) of `pid` and all its descendants; processes may vanish meanwhile.

    A descendant with its parent's exact command line is a fork that has not exec'd yet (Popen
    starting bwrap; vfork shares the parent's memory outright) or bwrap's own fork: its pages are
    its parent's, and counting them again showed a 1 MB run of ours as a 120 MB spike."""
    total, todo, seen = 0, [(pid, b"")], set()
    while todo:
        p, parent_cmd = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
            if cmd != parent_cmd:
                with open(f"/proc/{p}/status") as f:
                    total += next((int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [(int(c), cmd) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total * 1024


def make_text(mb: float) -> str:
    """About `mb` MB of numbered lines; a block repeated, so no transient copy inflates memory."""
    block = "".join(
        f"line {i:05d}: the quick brown fox jumps over the lazy dog {i % 97:02d}\n"
        for i in range(1000)
    )
    return block * max(1, round(mb * MB / len(block)))


# (question, context, max turns) -> (answer, seconds the system itself reports, if any)
Runner = Callable[[str, str, int], tuple[str, float | None]]


def ours_runner(base_url: str, data_dir: str) -> Runner:
    from rlm_research.graph import Settings
    from rlm_research.graph.api import run

    def go(question: str, context: str, max_turns: int) -> tuple[str, float | None]:
        s = Settings(model="openai:stub", sub_model="openai:stub", base_url=base_url,
                     max_turns=max_turns, data_dir=data_dir)  # fmt: skip
        return run(question, context, settings=s).answer, None

    return go


def official_runner(base_url: str) -> Runner:
    from rlm import RLM  # type: ignore[import-not-found]

    def go(question: str, context: str, max_turns: int) -> tuple[str, float | None]:
        backend = {"model_name": "stub", "base_url": base_url, "api_key": "x"}
        rlm = RLM(backend="openai", backend_kwargs=backend, environment="local", max_depth=1,
                  max_iterations=max_turns, verbose=False)  # fmt: skip
        res = rlm.completion(context, root_prompt=question)
        # execution_time ends before completion() stops its LMHandler, whose socketserver
        # shutdown waits out a 0.5 s poll: wall times step by 0.5 s, this one does not.
        return res.response, res.execution_time

    return go


def child(job: dict[str, Any]) -> dict[str, Any]:
    system, kind = job["system"], job["kind"]
    if system == "ours":
        go = ours_runner(job["base_url"], job["data_dir"])
    else:
        go = official_runner(job["base_url"])

    def timed(qkind: str, n: int, context: str, max_turns: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        answer, inner = go(QUESTION.format(kind=qkind, n=n, system=system), context, max_turns)
        wall = time.perf_counter() - t0
        assert answer == "done", f"{system} answered {answer!r} ({qkind}, n={n})"
        return wall, wall if inner is None else inner

    small = "a small context line\n" * 100
    timed("turns", 2, small, 4)  # warm-up: lazy imports, first connections
    out: dict[str, Any] = {}
    if kind == "turns":
        out["t2"], out["t2_in"] = timed("turns", 2, small, 4)
        out["tn"], out["tn_in"] = timed("turns", job["n"], small, job["n"] + 2)
    elif kind == "batch":
        timed("warmbatch", 2, small, 4)  # the batch path's own first use, with instant children
        out["run"], out["run_in"] = timed("batch", job["n"], small, 4)
    else:
        context = make_text(job["mb"])
        out["before"] = tree_rss(os.getpid())
        out["run"], out["run_in"] = timed("turns", 2, context, 4)
        out["host_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


# ---------------------------------------------------------------------------------------------
# Parent: run children, sample their memory, print tables


def run_child(job: dict[str, Any], stub: StubOpenAI, model: Model) -> dict[str, Any]:
    """One child process; its JSON plus `peak` (tree RSS), `calls` and `span`, or `error`."""
    env = child_env() if job["system"] == "official" else dict(os.environ)
    cmd = [sys.executable, "-m", "rlm_research.bench.side_by_side", "--child", json.dumps(job)]
    calls0 = stub.call_count
    model.take()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    streams: list[tuple[str, str]] = []

    def read() -> None:
        try:
            streams.append(proc.communicate(timeout=900))
        except subprocess.TimeoutExpired:  # a hung child is a result, not a hung benchmark
            proc.kill()
            streams.append(("", proc.communicate()[1] + "\ntimed out after 900 s"))

    reader = threading.Thread(target=read)
    reader.start()
    peak = 0
    while reader.is_alive():  # sample here, not in the child: the sampler must not be measured
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.01)
    reader.join()
    stdout, stderr = streams[0]
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = [ln for ln in stderr.strip().splitlines() if ln.strip()][-1:] or ["no error text"]
        return {"error": f"exit {proc.returncode}: {tail[0][:200]}"}
    out = json.loads(lines[-1])
    out.update(peak=peak, calls=stub.call_count - calls0)
    # warm-up 2 calls, then per kind: 2 + N turns; or 2 + 2 warm children + 1 + N + 1; or 2
    expect = {"turns": 4 + job.get("n", 0), "batch": 8 + job.get("n", 0), "load": 4}[job["kind"]]
    if out["calls"] != expect:
        return {"error": f"{out['calls']} model calls, expected {expect}"}
    if job["kind"] == "batch":
        arrivals = model.take()
        if len(arrivals) != job["n"]:
            return {"error": f"{len(arrivals)} timed child calls, expected {job['n']}"}
        out["span"] = max(arrivals) + model.delay - min(arrivals)
    return out


def med(rows: list[dict[str, Any]], key: str | Callable[[dict[str, Any]], float]) -> float | None:
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return None
    return statistics.median(key(r) if callable(key) else r[key] for r in ok)


def table(title: str, rows: list[tuple[str, float | None, float | None]], fmt: str) -> None:
    print(f"\n## {title}")
    print(f"{'':<34} {'ours':>10} {'official':>10} {'official/ours':>14}")
    for name, ours, off in rows:
        cells = [format(v, fmt) if v is not None else "-" for v in (ours, off)]
        ratio = f"{off / ours:.2f}x" if ours and off is not None else "-"
        print(f"{name:<34} {cells[0]:>10} {cells[1]:>10} {ratio:>14}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--turns", type=int, default=20, help="turns of the long run (> 2)")
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 16], help="batch sizes")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds per child call")
    parser.add_argument("--mb", type=float, default=40.0, help="context size for measurement 3")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return
    assert args.turns > 2, "--turns must be more than 2"
    os.environ.setdefault("RLM_API_KEY", "bench")  # ours' openai:stub needs some key
    started = time.monotonic()
    print(f"# side_by_side  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# machine: {platform.node()}, nproc={os.cpu_count()}, "
          f"python {platform.python_version()}, {platform.platform()}")  # fmt: skip
    print(f"# repeats {args.repeats} (medians), turns 2 and {args.turns}, batches {args.batch} "
          f"at {args.delay} s a child call, context {args.mb:g} MB")  # fmt: skip
    systems = ["ours"]
    try:
        check_installed()
        systems.append("official")
        dist = sorted(p.name for p in OFFICIAL_PATH.glob("rlms-*.dist-info"))
        version = dist[0].removesuffix(".dist-info") if dist else "rlms"
        print(f"# official: {version} at {OFFICIAL_PATH}")
    except RuntimeError:
        print(f"# official: not installed, only ours is measured; to compare, run: {INSTALL}")
    jobs = [{"kind": "turns", "n": args.turns}] + [{"kind": "batch", "n": n} for n in args.batch]
    jobs.append({"kind": "load", "mb": args.mb})
    results: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    model = Model(args.delay)
    with tempfile.TemporaryDirectory(prefix="bench-sbs-") as tmp, StubOpenAI(model) as stub:
        for r in range(args.repeats):
            order = systems if r % 2 == 0 else systems[::-1]  # who goes first alternates
            for job in jobs:
                for system in order:
                    data_dir = tempfile.mkdtemp(dir=tmp)  # a fresh blob store and database
                    full = {**job, "system": system, "base_url": stub.base_url,
                            "data_dir": data_dir}  # fmt: skip
                    key = (job["kind"], job.get("n", 0), system)
                    results.setdefault(key, []).append(run_child(full, stub, model))

    def pair(kind: str, n: int, key: str | Callable[[dict[str, Any]], float]) -> tuple:
        return tuple(med(results.get((kind, n, s), []), key) for s in ("ours", "official"))

    n, per_turn = args.turns, lambda r: (r["tn_in"] - r["t2_in"]) / (n - 2) * 1000
    table(f"1. Framework overhead per turn, instant model (2 and {n} turns)", [
        ("run s, 2 turns", *pair("turns", n, "t2")),
        (f"run s, {n} turns", *pair("turns", n, "tn")),
        (f"in-call s, {n} turns (*)", *pair("turns", n, "tn_in")),
        ("ms per turn, from in-call s (*)", *pair("turns", n, per_turn)),
    ], ".3f")  # fmt: skip
    rows = []
    for b in args.batch:
        rows += [(f"batch of {b}: run s", *pair("batch", b, "run")),
                 (f"batch of {b}: in-call s (*)", *pair("batch", b, "run_in")),
                 (f"batch of {b}: server span s", *pair("batch", b, "span"))]  # fmt: skip
    table(f"2. One llm_query_batched batch, {args.delay} s a child call (ideal span "
          f"{args.delay} s)", rows, ".2f")  # fmt: skip
    load = [("run s", "run"), ("in-call s (*)", "run_in")]
    load += [("tree RSS before the run", lambda r: r["before"] / MB),
             ("tree RSS peak", lambda r: r["peak"] / MB),
             ("added (peak - before)", lambda r: (r["peak"] - r["before"]) / MB),
             ("host process peak (ru_maxrss)", lambda r: r["host_peak"] / MB)]  # fmt: skip
    table(f"3. A {args.mb:g} MB context, 2 turns (memory in MB of 10^6 bytes)",
          [(name, *pair("load", 0, key)) for name, key in load], ".1f")  # fmt: skip
    print("\n(*) in-call: ours = run s; official = its own execution_time, which ends before "
          "completion() stops its LMHandler\n    (socketserver.shutdown waits for the 0.5 s "
          "poll of serve_forever, so official's run s steps by 0.5 s).")  # fmt: skip
    errors = [(k, row["error"]) for k, rs in results.items() for row in rs if "error" in row]
    for (kind, size, system), error in errors:
        print(f"# failed: {system} {kind}{f' n={size}' if size else ''}: {error}")
    print(f"\n# total benchmark time: {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
