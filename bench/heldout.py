"""Held-out evaluation: the real-document questions (`bench.real_docs`) or the generated
families' held-out seeds (`bench.tasks.HELD_OUT_SEEDS`), each run with every `--guards` preset
side by side (task by task, so a cut-short run still compares like with like).

    python -m bench.heldout --set real --split held_out --guards default off \\
        --out bench/results/heldout/real.jsonl --timeout 300
    python -m bench.heldout --set seeds --split held_out --tasks needle count_explicit \\
        --sizes 100K --guards default off --out bench/results/heldout/seeds.jsonl
    python -m bench.heldout --report --out bench/results/heldout/real.jsonl

Rows are appended to `--out` as they finish (resumable: a rerun skips rows already there).
Trajectories go to `<out>.traj/`; while the loop is being changed, read only the `dev` ones.
The report: per family and preset, the score, model calls and seconds per correct answer, how
many runs ended `answered` with a tool's note or code as the answer, and the model calls of
counts whose first answer was already right.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rlm_research.bench import quality
from rlm_research.bench.tasks import DEV_SEEDS, FAMILIES, HELD_OUT_SEEDS, Task, make, parse_size


def tasks_for(opts: argparse.Namespace) -> list[Task]:
    if opts.set == "real":
        if opts.seeds:
            raise SystemExit("--seeds picks seeds of the generated tasks: use it with --set seeds")
        from rlm_research.bench.real_docs import DOCUMENTS, real_tasks

        known = {d.name for d in DOCUMENTS}
        if set(opts.docs) - known:
            raise SystemExit(f"--docs: the documents are {', '.join(sorted(known))}")
        tasks: list[Task] = list(real_tasks(opts.split, opts.docs))
        return [t for t in tasks if not opts.tasks or t.family in opts.tasks]
    if opts.docs:
        raise SystemExit("--docs picks real documents: use it with --set real")
    seeds = {"dev": DEV_SEEDS, "held_out": HELD_OUT_SEEDS, "all": DEV_SEEDS + HELD_OUT_SEEDS}
    chosen = [s for s in seeds[opts.split] if not opts.seeds or s in opts.seeds]
    if opts.seeds and len(chosen) != len(set(opts.seeds)):
        raise SystemExit(f"--seeds: the {opts.split} split has seeds {seeds[opts.split]}")
    # Seed by seed, so a run cut short still covers every family.
    return [
        make(family, parse_size(size), seed)
        for seed in chosen
        for size in opts.sizes
        for family in (opts.tasks or FAMILIES)
    ]


def first_offered(trajectory: list[dict[str, Any]]) -> str | None:
    """The first answer the root gave, before any guard sent it back."""
    for record in trajectory:
        if record.get("depth", 0) == 0 and record.get("offered") is not None:
            return str(record["offered"])
    return None


def tool_note_answer(row: dict[str, Any]) -> bool:
    """An `answered` run whose answer is a tool's note or code, text no model answer produced."""
    answer = str(row.get("answer") or "").strip()
    return row.get("stop_reason") == "answered" and (
        answer.startswith(("(grep:", "(judge_lines", "```")) or "(grep: no line has" in answer
    )


def run_all(opts: argparse.Namespace) -> None:
    out = Path(opts.out)
    rows = quality.load_rows(out)
    done = {(r["task"], r["guards"]) for r in rows if "guards" in r}
    for task in tasks_for(opts)[: opts.limit]:
        for preset in opts.guards:
            if (task.id, preset) in done:
                continue
            o = copy.copy(opts)
            o.guards, o.model_obj = preset, None
            system = f"rlm-{preset}"
            quality.RUNNERS[system] = quality.run_rlm
            print(f"[{time.strftime('%H:%M:%S')}] {task.id} guards={preset} ...", file=sys.stderr)
            traj: list[dict[str, Any]] = []
            row = quality.run_one(task, system, o, keep_trajectory=traj)
            row["guards"] = preset
            row["split"] = task.meta.get("split") or opts.split
            offered = first_offered(traj)
            row["first_answer"] = offered
            row["first_right"] = offered is not None and task.score(offered) >= 1.0
            row["tool_note_answer"] = tool_note_answer(row)
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as f:
                f.write(quality.json.dumps(row, default=str) + "\n")
            print(
                f"    score {row['score']}  {row['seconds']}s  calls {row['calls']}  "
                f"answer {str(row.get('answer'))[:60]!r}  gold {str(task.gold)[:40]!r}",
                file=sys.stderr,
                flush=True,
            )


def per_correct(rows: list[dict[str, Any]], key: str) -> str:
    right = sum(1 for r in rows if r["score"] >= 1.0)
    return f"{sum(r[key] for r in rows) / right:,.0f}" if right else "-"


def report(rows: list[dict[str, Any]]) -> str:
    """One line per (split, family, guards preset); then the totals per split and preset."""
    head = (
        "| split | family | guards | runs | mean score | correct | calls / correct "
        "| seconds / correct | tool-note answers | right-first counts: calls |\n"
        + "|---" * 10
        + "|"
    )
    lines = [head]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r.get("split", "?"), r["family"], r["guards"]), []).append(r)
        groups.setdefault((r.get("split", "?"), "ALL", r["guards"]), []).append(r)
    for (split, family, preset), rs in sorted(groups.items()):
        counts = [
            r["calls"]
            for r in rs
            if r.get("first_right") and r["family"] in ("count", "sum", "count_explicit")
        ]
        lines.append(
            f"| {split} | {family} | {preset} | {len(rs)} "
            f"| {statistics.mean(r['score'] for r in rs):.2f} "
            f"| {sum(1 for r in rs if r['score'] >= 1.0)} | {per_correct(rs, 'calls')} "
            f"| {per_correct(rs, 'seconds')} | {sum(1 for r in rs if r.get('tool_note_answer'))} "
            f"| {', '.join(map(str, counts)) or '-'} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.heldout", description=__doc__.split("\n")[0])
    p.add_argument("--set", choices=("real", "seeds"), default="real")
    p.add_argument("--split", choices=("dev", "held_out", "all"), default="held_out")
    p.add_argument("--tasks", nargs="*", default=None, help="families to run (default: all)")
    p.add_argument(
        "--seeds", nargs="+", type=int, default=[], help="seeds set: only these seeds of --split"
    )
    p.add_argument("--sizes", nargs="+", default=["100K"], help="seeds set: 100K 1M ...")
    p.add_argument(
        "--docs", nargs="+", default=[], help="real set: only these documents (gnupg-news ...)"
    )
    p.add_argument("--guards", nargs="+", default=["default", "off"], help="presets or lists")
    p.add_argument("--model", default="local")
    p.add_argument("--base-url", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int, default=None, help="at most this many tasks")
    p.add_argument("--max-turns", type=int, default=12)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--report", action="store_true", help="only print the table of --out")
    return p


def main(argv: list[str] | None = None) -> None:
    opts = build_parser().parse_args(argv)
    if not opts.report:
        tmp = None
        if opts.data_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="rlm-heldout-")
            opts.data_dir = tmp.name
        try:
            run_all(opts)
        finally:
            if tmp is not None:
                tmp.cleanup()
    print(report([r for r in quality.load_rows(Path(opts.out)) if "guards" in r]))


if __name__ == "__main__":
    main()
