"""Quality benchmark: systems side by side on the generated long-context tasks (`bench.tasks`).

    python -m bench.quality --tasks needle count_explicit --sizes 100K --seeds 1 2 \\
        --systems rlm plain --model local --out bench/results/quality.jsonl

Systems, all on the same model:
- `rlm`: this project (`graph.run`), `--max-turns` turns per level, `--timeout` seconds per run
  (the run's `max_seconds`: it ends with `budget:time` and one closing call).
- `plain`: one model call with the context truncated (head kept) to fit `--window` tokens, minus
  room for the question and the reply.
- `official`: the PyPI `rlms` package (import `rlm`) against an OpenAI-compatible server (see
  `bench.official`); needs `pip install rlms` and, for the embedded model, llama-cpp-python's
  server (started and restarted per task by the runner).

Every finished (task, system, model) row is appended to `--out` as one JSON line; a second run
with the same `--out` skips the rows already there (resumable). Each row's trajectory goes to
`<out>.traj/<task>.<system>.json` for failure analysis. The table printed at the end covers every
row of `--out` that matches the arguments. `prompt tok` is what was sent, `eval tok` what the
embedded model had to evaluate after reusing its KV prefix cache (`-` when unknown: hosted models,
rows written before it was recorded).

Failure reasons: `no answer` (empty), `code errors` (half or more of the turns raised),
`no code` (half or more of the turns ran nothing), `stuck`, `budget` (turns/tokens),
`timeout`, `error` (the system raised), else `wrong` (an answer that scored below 1).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlm_research.bench.tasks import FAMILIES, Task, make, parse_size, size_label

SYSTEMS = ("rlm", "plain", "official")
PLAIN_SYSTEM = "Answer the question using only the text you are given. Reply with the answer only."
PLAIN_USER = "Text:\n{text}\n\nQuestion: {question}\nAnswer briefly."
TRUNCATION_NOTE = "\n[... the text is cut here: it is longer than the window ...]"


# ---------------------------------------------------------------------------------------------
# Systems: each takes (task, options) and returns a dict with answer, stop_reason, usage,
# trajectory (may be empty) and extra fields.


def usage_totals(usage: dict[str, Any] | None) -> dict[str, int | None]:
    """Totals over the models. `prompt_tokens_evaluated` (what the model had to evaluate after
    its KV prefix cache) is known only when every model reported it, else None."""
    models = (usage or {}).get("models", {})
    evaluated = [m.get("input_tokens_evaluated") for m in models.values()]
    known = bool(evaluated) and None not in evaluated
    return {
        "calls": sum(m.get("calls", 0) for m in models.values()),
        "prompt_tokens": sum(m.get("input_tokens", 0) for m in models.values()),
        "prompt_tokens_evaluated": sum(evaluated) if known else None,
        "completion_tokens": sum(m.get("output_tokens", 0) for m in models.values()),
        "sub_calls": (usage or {}).get("sub_calls", 0),
    }


def eval_cell(rows: list[dict[str, Any]]) -> str:
    """Mean prompt tokens evaluated over the rows that know it (rows written before the field
    existed, or by hosted models, don't): `-` for none, `(k/n)` after it for some."""
    known = [
        r["prompt_tokens_evaluated"] for r in rows if r.get("prompt_tokens_evaluated") is not None
    ]
    if not known:
        return "-"
    part = "" if len(known) == len(rows) else f" ({len(known)}/{len(rows)})"
    return f"{statistics.mean(known):,.0f}{part}"


def rlm_settings(opts: argparse.Namespace) -> Any:
    """The settings every benchmark runs this project with: temperature 0, the run's budgets."""
    from rlm_research.graph import Settings

    return Settings(
        model=opts.model_obj or opts.model,
        base_url=opts.base_url,
        temperature=0.0,
        max_turns=opts.max_turns,
        max_seconds=float(opts.timeout),
        data_dir=opts.data_dir,
        guards=getattr(opts, "guards", None) or "default",
    )


def run_rlm(task: Task, opts: argparse.Namespace) -> dict[str, Any]:
    from rlm_research.graph import run

    res = run(task.question, task.context, settings=rlm_settings(opts))
    return {
        "answer": res.answer,
        "stop_reason": res.stop_reason,
        # The reply kept aside when it was not taken as the answer (a refused plain answer).
        "unaccepted": res.unaccepted[:500],
        "usage": res.usage,
        "trajectory": res.trajectory,
        "run_id": res.run_id,
    }


def count_tokens_fn(model: Any) -> Callable[[str], int]:
    """Exact token counts for the embedded model, else ~4 characters a token."""
    loaded = getattr(model, "loaded", None)
    if callable(loaded):
        llama = loaded().llama
        return lambda s: len(llama.tokenize(s.encode(), add_bos=False, special=False))
    return lambda s: len(s) // 4 + 1


def truncate_to_tokens(text: str, budget: int, count: Callable[[str], int]) -> tuple[str, bool]:
    """The longest head of `text` that fits `budget` tokens (binary search on a char cut)."""
    if budget <= 0:
        return "", bool(text)
    if len(text) <= budget * 8 and count(text) <= budget:  # no model packs 8 chars a token
        return text, False
    lo, hi = 0, min(len(text), budget * 8)
    while hi - lo > 200:
        mid = (lo + hi) // 2
        if count(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid
    return text[:lo], lo < len(text)


def run_plain(task: Task, opts: argparse.Namespace) -> dict[str, Any]:
    from langchain_core.messages import HumanMessage, SystemMessage
    from rlm_research.graph.usage import model_call_usage
    from rlm_research.tools.chat_models import build_chat_model, model_label

    spec = opts.model_obj or opts.model
    model = build_chat_model(
        spec, base_url=opts.base_url, temperature=0.0, max_tokens=opts.plain_max_tokens
    )
    count = count_tokens_fn(model)
    overhead = count(PLAIN_SYSTEM + PLAIN_USER + task.question + TRUNCATION_NOTE) + 64
    text, cut = truncate_to_tokens(
        task.context, opts.window - opts.plain_max_tokens - overhead, count
    )
    if cut:
        text += TRUNCATION_NOTE
    messages = [
        SystemMessage(PLAIN_SYSTEM),
        HumanMessage(PLAIN_USER.format(text=text, question=task.question)),
    ]
    reply = model.invoke(messages)
    label = model_label(spec)
    content = reply.content if isinstance(reply.content, str) else str(reply.content)
    usage = model_call_usage(label, reply, sum(len(str(m.content)) for m in messages))
    return {
        "answer": content.strip(),
        "stop_reason": "answered",
        "usage": usage,
        "trajectory": [],
        "context_chars_shown": len(text) - (len(TRUNCATION_NOTE) if cut else 0),
        "truncated": cut,
    }


def run_official(task: Task, opts: argparse.Namespace) -> dict[str, Any]:
    from rlm_research.bench.official import run_official as _run

    return _run(task, opts)


RUNNERS: dict[str, Callable[[Task, argparse.Namespace], dict[str, Any]]] = {
    "rlm": run_rlm,
    "plain": run_plain,
    "official": run_official,
}


# ---------------------------------------------------------------------------------------------
# Failure reasons


def failure_reason(row: dict[str, Any]) -> str:
    if row.get("error"):
        return "error"
    if row["score"] >= 1.0:
        return ""
    if not (row.get("answer") or "").strip():
        return "no answer"
    stop = row.get("stop_reason") or ""
    turns = row.get("turns") or 0
    if turns and row.get("error_turns", 0) * 2 >= turns:
        return "code errors"
    if turns and row.get("no_code_turns", 0) * 2 >= turns:
        return "no code"
    if stop == "budget:time":
        return "timeout"
    if stop.startswith("budget"):
        return "budget"
    if stop == "stuck":
        return "stuck"
    return "wrong"


def turn_stats(trajectory: list[dict[str, Any]]) -> dict[str, int]:
    """Root-level turns, and how many of them raised or ran no code."""
    root = [t for t in trajectory if t.get("depth", 0) == 0]
    errors = sum(
        1
        for t in root
        if "Traceback" in t.get("observation", "") or "Error:" in t.get("observation", "")
    )
    no_code = sum(1 for t in root if not t.get("code"))
    return {
        "turns": len(root),
        "error_turns": errors,
        "no_code_turns": no_code,
        "child_turns": len(trajectory) - len(root),
    }


# ---------------------------------------------------------------------------------------------
# The runner


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["task"], row["system"], row["model"])


def load_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a row cut by a crash: it will be run again
                pass
    return rows


def run_one(
    task: Task, system: str, opts: argparse.Namespace, keep_trajectory: list | None = None
) -> dict[str, Any]:
    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "task": task.id,
        "family": task.family,
        "size": task.size,
        "seed": task.seed,
        "system": system,
        "model": opts.model,
        "gold": task.gold,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    try:
        out = RUNNERS[system](task, opts)
    except Exception as exc:  # a crash of one system is a result, not the end of the benchmark
        out = {"answer": "", "stop_reason": "error", "usage": {}, "trajectory": []}
        row["error"] = f"{type(exc).__name__}: {exc}"[:500]
        row["traceback"] = traceback.format_exc()[-2000:]
    row["seconds"] = round(time.perf_counter() - t0, 1)
    trajectory = out.pop("trajectory", []) or []
    if keep_trajectory is not None:
        keep_trajectory.extend(trajectory)
    usage = out.pop("usage", {}) or {}
    row.update(out)
    row.update(usage_totals(usage))
    row.update(turn_stats(trajectory))
    row["score"] = round(task.score(row.get("answer")), 4)
    row["failure"] = failure_reason(row)
    if opts.out and trajectory:
        tdir = Path(str(opts.out) + ".traj")
        tdir.mkdir(parents=True, exist_ok=True)
        name = f"{task.id}.{system}.{opts.model}".replace("/", "_").replace(":", "_")
        (tdir / f"{name}.json").write_text(
            json.dumps(
                {
                    "question": task.question,
                    "gold": task.gold,
                    "row": row,
                    "trajectory": trajectory,
                },
                indent=1,
                default=str,
            )  # fmt: skip
        )
    return row


def iter_tasks(opts: argparse.Namespace):
    for family in opts.tasks:
        for size in opts.sizes:
            for seed in opts.seeds:
                yield family, parse_size(size), seed


def run_benchmark(opts: argparse.Namespace, log: Callable[[str], None] = print) -> list[dict]:
    out = Path(opts.out) if opts.out else None
    rows = load_rows(out) if out else []
    done = {row_key(r) for r in rows}
    n = 0
    for family, size, seed in iter_tasks(opts):
        if opts.limit is not None and n >= opts.limit:
            break
        task_id = f"{family}@{size_label(size)}#s{seed}"
        todo = [s for s in opts.systems if (task_id, s, opts.model) not in done]
        n += 1
        if not todo:
            continue
        task = make(family, size, seed)
        for system in todo:
            log(f"[{time.strftime('%H:%M:%S')}] {task.id} {system} ...")
            row = run_one(task, system, opts)
            rows.append(row)
            if out:
                out.parent.mkdir(parents=True, exist_ok=True)
                with out.open("a") as f:
                    f.write(json.dumps(row, default=str) + "\n")
            log(
                f"    score {row['score']}  {row['seconds']}s  calls {row['calls']}  "
                f"answer {str(row.get('answer'))[:80]!r}  gold {str(task.gold)[:40]!r}  "
                f"{row['failure']}"
            )
    return rows


def selected(rows: list[dict[str, Any]], opts: argparse.Namespace) -> list[dict[str, Any]]:
    wanted = {f"{f}@{size_label(s)}#s{seed}" for f, s, seed in iter_tasks(opts)}
    return [
        r
        for r in rows
        if r["task"] in wanted and r["system"] in opts.systems and r["model"] == opts.model
    ]


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per run, then the mean per (family, size, system)."""
    head = (
        "| task | system | score | seconds | calls | sub-calls | prompt tok | eval tok "
        "| completion tok | turns | failure | answer |\n" + "|---" * 12 + "|"
    )
    lines = [head]
    for r in sorted(rows, key=lambda r: (r["family"], r["size"], r["seed"], r["system"])):
        ans = str(r.get("answer") or "").replace("|", "/").replace("\n", " ")[:40]
        lines.append(
            f"| {r['task']} | {r['system']} | {r['score']:.2f} | {r['seconds']:.0f} | {r['calls']} "
            f"| {r.get('sub_calls', 0)} | {r['prompt_tokens']:,} | {eval_cell([r])} "
            f"| {r['completion_tokens']:,} "
            f"| {r.get('turns', 0)} | {r['failure'] or '-'} | {ans} |"
        )
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["family"], r["size"], r["system"]), []).append(r)
    lines += [
        "",
        "| family | size | system | runs | mean score | mean seconds | mean calls "
        "| mean prompt tok | mean eval tok | failures |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (fam, size, system), rs in sorted(groups.items()):
        fails: dict[str, int] = {}
        for r in rs:
            if r["failure"]:
                fails[r["failure"]] = fails.get(r["failure"], 0) + 1
        fail_txt = ", ".join(f"{k} {v}" for k, v in sorted(fails.items())) or "-"
        lines.append(
            f"| {fam} | {size_label(size)} | {system} | {len(rs)} "
            f"| {statistics.mean(r['score'] for r in rs):.2f} "
            f"| {statistics.mean(r['seconds'] for r in rs):.0f} "
            f"| {statistics.mean(r['calls'] for r in rs):.1f} "
            f"| {statistics.mean(r['prompt_tokens'] for r in rs):,.0f} | {eval_cell(rs)} "
            f"| {fail_txt} |"
        )
    return "\n".join(lines)


def machine() -> str:
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    return f"{platform.platform()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python " + (
        platform.python_version()
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--sizes", nargs="+", default=["100K"], help="100K 1M 10M or a number")
    p.add_argument("--systems", nargs="+", default=["rlm", "plain"], choices=SYSTEMS)
    p.add_argument("--model", default="local", help="model spec (local, local:0.5b, openai:...)")
    p.add_argument("--base-url", default=None, help="for openai:<name> on a compatible server")
    p.add_argument("--seed", type=int, default=None, help="one seed (same as --seeds N)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--limit", type=int, default=None, help="at most this many tasks")
    p.add_argument("--out", default=None, help="results JSONL (resumable)")
    p.add_argument("--max-turns", type=int, default=12, help="rlm: turns per level")
    p.add_argument("--timeout", type=float, default=1800.0, help="rlm: seconds per run")
    p.add_argument("--window", type=int, default=32768, help="plain: the model's window, tokens")
    p.add_argument("--plain-max-tokens", type=int, default=256, help="plain: reply tokens")
    p.add_argument("--data-dir", default=None, help="rlm: where runs are stored (default: temp)")
    return p


def main(argv: list[str] | None = None, model_obj: Any = None) -> list[dict[str, Any]]:
    opts = build_parser().parse_args(argv)
    if opts.seed is not None:
        opts.seeds = [opts.seed]
    opts.model_obj = model_obj  # tests pass a scripted model here
    tmp = None
    if opts.data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="rlm-bench-")
        opts.data_dir = tmp.name
    print(f"# {machine()}; model {opts.model}", file=sys.stderr)
    try:
        rows = run_benchmark(opts, log=lambda s: print(s, file=sys.stderr, flush=True))
    finally:
        if tmp is not None:
            tmp.cleanup()
    sel = selected(rows, opts)
    print(table(sel))
    return sel


if __name__ == "__main__":
    main()
