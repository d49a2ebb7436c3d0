"""Benchmark: what durability costs per turn, and that it does not grow with the context.

For each context size (generated text of 1, 10 and 40 MB by default) it runs the public `run()`
with the real SQLite checkpointer (`db_path=...`, WAL, durability "sync") and an instant scripted
root model (FakeListChatModel): a 2-turn run (1 cell + FINAL) and a 20-turn run (19 cells +
FINAL), each in a fresh data folder. Every cell is `print(len(context), i)`, different each turn
(and `stuck_after` is high), so nothing ends the run early.

Bytes added per turn = (bytes after the 20-turn run - bytes after the 2-turn run) / 18, for the
database file plus its WAL, and for the blob store. Both runs store the context once, so it
cancels out. Seconds per turn is the median gap between consecutive `turn` progress events of the
20-turn run after the first (model time is nil, so this is the framework: checkpoints, blob
store, REPL round trip); the first gap (worker start, context load) is shown apart. Figures are
medians over `--repeats` runs, interleaved across sizes so machine noise hits all alike.

The `+big` variant (at the largest size) makes a derived variable as large as the context on its
first cell (`big = context.upper()`) and only reads it later: the namespace snapshot stores it
once (content-addressed), so blob bytes grow by its size once, not per turn.

With `--db postgresql://...` every run is also made on PostgreSQL (LangGraph's PostgresSaver,
our run index and chunked blob tables), each run in a fresh schema of that database (dropped
afterwards), and the table shows both backends side by side. PostgreSQL sizes are
`pg_total_relation_size` (heap, TOAST, indexes) of the checkpoint tables ("db") and of the blob
tables ("blobs"); "cache" is the local copy of the context the REPL worker reads. Each run's
context starts with a line of its own, so no run finds its blobs already stored by another.

    python -m bench.durable_overhead [--sizes 1 10 40] [--repeats 3] [--turns 20] [--no-big]
        [--db postgresql://user@host/dbname]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from rlm_research.graph import Settings
from rlm_research.graph.api import stream

MB = 1_000_000
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "omicron",
    "sigma",
]


def make_context(megabytes: float, seed: int = 7) -> str:
    """Text of about `megabytes` MB: numbered lines of words (ASCII, so chars == bytes)."""
    rng = random.Random(seed)
    block = [" ".join(rng.choices(WORDS, k=9)) for _ in range(997)]
    target = int(megabytes * MB)
    parts: list[str] = []
    size = i = 0
    while size < target:
        line = f"{i:08d} {block[i % len(block)]}\n"
        parts.append(line)
        size += len(line)
        i += 1
    return "".join(parts)[:target]


def py(code: str) -> str:
    return f"```python\n{code}\n```"


def replies(turns: int, big: bool) -> list[str]:
    """`turns - 1` cells, then FINAL: each cell differs, so stuck detection stays quiet."""
    cells = []
    for i in range(1, turns):
        if big and i == 1:
            cells.append(py("big = context.upper()\nprint(len(big), 1)"))
        elif big:
            cells.append(py(f"print(len(big), len(context), {i})"))
        else:
            cells.append(py(f"print(len(context), {i})"))
    return cells + [py("FINAL('done')")]


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def tree_size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return sum(p.stat().st_size for p in files), len(files)


def table_bytes(db: Path) -> dict[str, tuple[int, int]]:
    """Rows and payload bytes of the checkpointer's tables (what SQLite stores, before pages)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cp = conn.execute(
            "SELECT count(*), coalesce(sum(length(checkpoint) + length(metadata)), 0)"
            " FROM checkpoints"
        ).fetchone()
        wr = conn.execute("SELECT count(*), coalesce(sum(length(value)), 0) FROM writes").fetchone()
        steps = conn.execute(
            "SELECT json_extract(metadata, '$.step'), length(checkpoint) + length(metadata)"
            " FROM checkpoints WHERE checkpoint_ns = '' ORDER BY rowid"
        ).fetchall()
    finally:
        conn.close()
    return {"checkpoints": tuple(cp), "writes": tuple(wr), "steps": dict(steps)}


def turn_checkpoint_bytes(steps: dict[int, int], turn: int) -> int:
    """Checkpoint payload of one turn: its generate_code, execute and observe steps."""
    return sum(steps.get(3 * (turn - 1) + i, 0) for i in range(3))


def one_run(
    context: str, turns: int, big: bool, data_dir: Path, pg_url: str | None = None
) -> dict[str, Any]:
    data_dir.mkdir(parents=True)
    context = f"run {data_dir.name}\n{context}"  # a blob of its own, on a shared server too
    db: Path | str = data_dir / "runs.sqlite"
    wal = data_dir / "runs.sqlite-wal"
    schema = f"bench_{data_dir.name}_{os.getpid()}"
    if pg_url is not None:
        db = pg_schema(pg_url, schema, create=True)
    settings = Settings(
        model=FakeListChatModel(responses=replies(turns, big)),
        max_turns=turns + 5,
        stuck_after=1000,
        data_dir=str(data_dir),
    )
    turn_times: list[float] = []
    wal_peak = 0
    result = None
    t0 = time.monotonic()
    for event in stream("How long is the text?", context, settings=settings, db_path=db):
        if event["kind"] == "turn":
            turn_times.append(time.monotonic())
            wal_peak = max(wal_peak, file_size(wal))
        elif event["kind"] == "result":
            result = event["result"]
    seconds = time.monotonic() - t0
    assert result is not None and result.answer == "done", result
    assert len(turn_times) == turns, f"{len(turn_times)} turns, expected {turns}"
    gaps = [b - a for a, b in zip(turn_times, turn_times[1:], strict=False)]
    timing = {
        "seconds": seconds,
        "turn1": gaps[0] if gaps else 0.0,
        "turn_median": statistics.median(gaps[1:]) if len(gaps) > 1 else 0.0,
    }
    if pg_url is not None:
        try:
            return {**timing, **pg_sizes(str(db)), "cache": tree_size(data_dir / "blob-cache")[0]}
        finally:
            pg_schema(pg_url, schema, create=False)
    blobs, blob_files = tree_size(data_dir / "blobs")
    return {
        **timing,
        "db": file_size(db),
        "wal": file_size(wal),
        "wal_peak": wal_peak,
        "blobs": blobs,
        "blob_files": blob_files,
        "tables": table_bytes(db),
        "cache": 0,
    }


def pg_schema(url: str, schema: str, *, create: bool) -> str:
    """Create (or drop) a schema for one run; the URL whose connections use it."""
    import psycopg
    from rlm_research.graph.stores.postgres import close_pools

    if not create:
        close_pools()  # the run's pool holds connections to the schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        if create:
            conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def pg_sizes(url: str) -> dict[str, Any]:
    """On-disk bytes of the checkpoint and blob tables, and the rows' payload."""
    import psycopg

    def size(*tables: str) -> int:
        return sum(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0]
                   for t in tables)  # fmt: skip

    with psycopg.connect(url) as conn:
        cp = conn.execute(
            "SELECT count(*), coalesce(sum(pg_column_size(checkpoint) + pg_column_size(metadata)),"
            " 0) FROM checkpoints"
        ).fetchone()
        cb = conn.execute(
            "SELECT count(*), coalesce(sum(length(blob)), 0) FROM checkpoint_blobs"
        ).fetchone()
        wr = conn.execute(
            "SELECT count(*), coalesce(sum(length(blob)), 0) FROM checkpoint_writes"
        ).fetchone()
        blob_rows = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM rlm_blobs"
        ).fetchone()
        db = size("checkpoints", "checkpoint_blobs", "checkpoint_writes", "rlm_runs")
        blobs = size("rlm_blobs", "rlm_blob_chunks")
    return {
        "db": db,
        "wal": 0,
        "wal_peak": 0,
        "blobs": blobs,
        "blob_files": blob_rows[0],
        "blob_payload": int(blob_rows[1]),
        "tables": {
            "checkpoints": (cp[0], int(cp[1] + cb[1])),
            "writes": (wr[0], int(wr[1])),
            "steps": {},
        },
    }


def added_per_turn(a: dict[str, Any], b: dict[str, Any], turns: int) -> dict[str, float]:
    """Bytes the longer run `b` added over the shorter run `a`, per extra turn."""
    db = (b["db"] + b["wal"] - a["db"] - a["wal"]) / turns
    blobs = (b["blobs"] - a["blobs"]) / turns
    rows = sum(b["tables"][t][1] - a["tables"][t][1] for t in ("checkpoints", "writes")) / turns
    return {"db": db, "blobs": blobs, "total": db + blobs, "rows": rows}


def fmt_bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 40], help="MB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--no-big", action="store_true", help="skip the +big variant")
    parser.add_argument("--db", help="also run on this postgresql:// database, side by side")
    args = parser.parse_args(argv)
    short = 2
    assert args.turns > short
    backends = ["sqlite"] + (["postgres"] if args.db else [])

    print(f"# durable_overhead  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"# machine: {platform.node()}, nproc={os.cpu_count()}, "
        f"python {platform.python_version()}, {platform.platform()}"
    )
    print(
        f"# {args.turns}-turn vs {short}-turn runs, instant scripted model, durability=sync, "
        f"backends: {', '.join(backends)}, repeats: {args.repeats}"
    )
    variants = [(size, False) for size in args.sizes]
    if not args.no_big:
        variants.append((max(args.sizes), True))
    contexts = {size: make_context(size) for size in args.sizes}
    runs = collect(args, backends, variants, contexts, short)
    print_table(runs, backends, variants, short, args.turns)
    print_details(runs, backends, variants, short, args.turns)


Key = tuple[str, float, bool, int]


def collect(args, backends, variants, contexts, short) -> dict[Key, list[dict[str, Any]]]:
    """Every run, interleaved across backends and sizes so machine noise hits all alike."""
    runs: dict[Key, list[dict[str, Any]]] = {}
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="bench-durable-"))
    try:
        n = 0
        for _rep in range(args.repeats):
            for size, big in variants:
                for backend in backends:
                    for turns in (short, args.turns):
                        n += 1
                        url = args.db if backend == "postgres" else None
                        out = one_run(contexts[size], turns, big, tmp / f"run{n}", url)
                        runs.setdefault((backend, size, big, turns), []).append(out)
                        shutil.rmtree(tmp / f"run{n}")  # keep the disk small; sizes are measured
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"# collected in {time.monotonic() - started:.1f} s")
    return runs


LABEL = {False: "", True: " +big"}


def print_table(runs, backends, variants, short: int, turns: int) -> None:
    per = turns - short
    header = (
        f"{'context':>11} {'backend':>8} {'db 2t':>9} {'db 20t':>9} {'blobs 2t':>9} "
        f"{'blobs 20t':>10} {'db B/turn':>10} {'blob B/turn':>12} {'total B/turn':>13} "
        f"{'rows B/turn':>12} {'turn1 s':>8} {'s/turn':>7} {'run s':>6}"
    ).replace("20t", f"{turns}t")
    print(header)
    print("-" * len(header))
    for size, big in variants:
        for backend in backends:
            shorts, longs = runs[(backend, size, big, short)], runs[(backend, size, big, turns)]
            pairs = [added_per_turn(a, b, per) for a, b in zip(shorts, longs, strict=True)]
            med = {k: statistics.median(p[k] for p in pairs) for k in pairs[0]}
            a, b = shorts[0], longs[0]
            print(
                f"{f'{size:g} MB' + LABEL[big]:>11} {backend:>8} "
                f"{fmt_bytes(a['db'] + a['wal']):>9} {fmt_bytes(b['db'] + b['wal']):>9} "
                f"{fmt_bytes(a['blobs']):>9} {fmt_bytes(b['blobs']):>10} {med['db']:>10,.0f} "
                f"{med['blobs']:>12,.0f} {med['total']:>13,.0f} {med['rows']:>12,.0f} "
                f"{statistics.median(r['turn1'] for r in longs):>8.3f} "
                f"{statistics.median(r['turn_median'] for r in longs):>7.3f} "
                f"{statistics.median(r['seconds'] for r in longs):>6.2f}"
            )
    print()
    print(
        "# db: SQLite file + WAL after the run (closed, so the WAL is checkpointed), or the"
        " PostgreSQL checkpoint tables + run index on disk; blobs: the blob folder, or the blob"
        " tables on disk (TOAST, compressed); rows B/turn: payload of checkpoint + write rows."
    )
    print(
        "# turn1 s: first gap between turns (worker start, context load, first cell);"
        " s/turn: median of the later gaps."
    )


def print_details(runs, backends, variants, short: int, turns: int) -> None:
    per = turns - short
    print(f"# After the {turns}-turn run (first repeat): rows / payload bytes per table, WAL peak,")
    print("# blob files (rows), the worker's local context copy (PostgreSQL), total B/turn of")
    print("# each repeat, and the SQLite checkpoint payload of turn 2 vs the last full turn:")
    for size, big in variants:
        for backend in backends:
            b = runs[(backend, size, big, turns)][0]
            cp_rows, cp_bytes = b["tables"]["checkpoints"]
            wr_rows, wr_bytes = b["tables"]["writes"]
            shorts, longs = runs[(backend, size, big, short)], runs[(backend, size, big, turns)]
            pairs = zip(shorts, longs, strict=True)
            each = ", ".join(f"{added_per_turn(x, y, per)['total']:,.0f}" for x, y in pairs)
            steps = b["tables"]["steps"]
            early = turn_checkpoint_bytes(steps, 2)
            late = turn_checkpoint_bytes(steps, turns - 1)
            extra = (
                f"blob payload {fmt_bytes(b['blob_payload'])}, cache {fmt_bytes(b['cache'])}"
                if backend == "postgres"
                else f"WAL peak {fmt_bytes(b['wal_peak'])}, turn 2 {early:,} B, "
                f"turn {turns - 1} {late:,} B"
            )
            print(
                f"{f'{size:g} MB' + LABEL[big]:>11} {backend:>8}: checkpoints {cp_rows} / "
                f"{fmt_bytes(cp_bytes)}, writes {wr_rows} / {fmt_bytes(wr_bytes)}, blob files "
                f"{b['blob_files']}, {extra}; B/turn per repeat: {each}"
            )


if __name__ == "__main__":
    main()
