"""The record of a run: a markdown report, the trajectory as JSON lines, and the HTML viewer.

All three read one RunRecord (`report.run_record`: the call tree from the checkpoints, every
depth's turns, timing, usage, budgets), so they carry the same facts.

Report: question, answer, status, why the run ended (and, for a run that did not finish, where
it stopped and the resume command), sources (names and sizes), usage per model for the whole
call tree, budgets used against those set, the call tree (one row per level: depth, question,
answer, turns, its own model calls, tokens and seconds, stop reason) and each root-level turn's
code and truncated output.

Trajectory (`<run_id>.jsonl`): one line per turn at every depth, depth first, each with `node`
(the level's path in the call tree: `0`, `0.1`, `0.1.2`, ...), `depth`, `turn`, `code`,
`observation` and `time`, plus `model_started` / `model_seconds` when the checkpoints say.

Viewer (`<run_id>.html`): see `report.html_viewer`.
"""

from __future__ import annotations

import json
import logging
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.usage import input_text, total_calls, total_tokens
from rlm_research.report.report_files import atomic_write, report_paths
from rlm_research.report.run_record import RunRecord, gather_run, level_from_tree, why_it_ended

log = logging.getLogger("rlm_research.report")
OUTPUT_CHARS = 2_000  # of each root turn's output in the report
MAX_TREE_ROWS = 300


def write_trajectory(path: Path, records: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> int:
    lines = [json.dumps(r, ensure_ascii=False, default=str) for r in records]
    atomic_write(path, "".join(line + "\n" for line in lines))
    return len(lines)


def render_report(
    *,
    run_id: str,
    question: str,
    answer: str,
    status: str,
    stop_reason: str,
    usage: dict[str, Any],
    call_tree: dict[str, Any],
    sources: list[dict[str, Any]] | None,
    records: list[dict[str, Any]],
    models: dict[str, str | None] | None = None,
    error: str | None = None,
    trajectory_file: str | None = None,
    sandbox: str | None = None,
    record: RunRecord | None = None,
) -> str:
    out: list[str] = [f"# rlm-research run `{run_id}`", ""]
    out += ["## Question", "", _quote(question or "(unknown)"), ""]
    out += ["## Answer", "", answer.strip() or "_(no answer)_", ""]

    out += ["## Status", ""]
    out.append(f"- Status: **{status}**")
    out.append(f"- Stop reason: `{stop_reason}`")
    if record is not None:
        out.append(f"- {why_it_ended(record)}")
    if error:
        out.append(f"- Error: {error}")
    for role, label in (models or {}).items():
        if label:
            out.append(f"- {role.replace('_', ' ').capitalize()}: `{label}`")
    if call_tree:
        out.append(f"- Root turns: {call_tree.get('turns', 0)}")
        out.append(f"- Wall time: {_secs(call_tree.get('seconds'))}")
    if sandbox:
        out.append(f"- REPL sandbox: {sandbox}")
    # The embedded model's KV-state cache is bounded by us, not llama.cpp: show what it cost.
    out.append(f"- Peak memory of the process: {peak_rss_mb():,.0f} MB")
    if trajectory_file:
        out.append(f"- Trajectory: `{trajectory_file}`")
        out.append(f"- Viewer: `{Path(trajectory_file).with_suffix('.html')}`")
    out.append("")
    if record is not None and (record.stopped_at or record.resume_command):
        out += ["## Where it stopped", ""]
        out += [f"- {line}" for line in record.stopped_at]
        if record.resume_command:
            out.append(f"- Resume with: `{record.resume_command}`")
        out.append("")

    out += ["## Sources", ""]
    if sources:
        out += ["| Source | Characters |", "|---|---:|"]
        out += [f"| {_cell(s.get('name', '?'))} | {s.get('chars', 0):,} |" for s in sources]
    else:
        out.append("_None: the question alone._")
    out.append("")

    out += usage_section(usage)
    out += budget_section(record)
    out += tree_section(record, call_tree)
    out += root_turns_section(records)
    return "\n".join(out).rstrip() + "\n"


def usage_section(usage: dict[str, Any]) -> list[str]:
    """Calls and tokens per model for the whole call tree, with a total row."""
    out: list[str] = []
    out += ["## Usage (whole call tree)", ""]
    models_used = (usage or {}).get("models") or {}
    if models_used:
        out += ["| Model | Calls | Input tokens | Output tokens |", "|---|---:|---:|---:|"]
        for label, m in sorted(models_used.items()):
            out.append(
                f"| `{label}` | {m.get('calls', 0):,} | {input_text(m)} | "
                f"{m.get('output_tokens', 0):,} |"
            )
        total_in = {"input_tokens": sum(m.get("input_tokens", 0) for m in models_used.values())}
        if all("input_tokens_evaluated" in m for m in models_used.values()):  # else partial
            total_in["input_tokens_evaluated"] = sum(
                m["input_tokens_evaluated"] for m in models_used.values()
            )
        out.append(
            f"| **total** | {total_calls(usage):,} | {input_text(total_in)} | "
            f"{sum(m.get('output_tokens', 0) for m in models_used.values()):,} |"
        )
    else:
        out.append("_No model calls recorded._")
    out += ["", f"Sub-calls: {(usage or {}).get('sub_calls', 0):,}"]
    if (usage or {}).get("web_calls"):
        out.append(f"Web calls: {usage['web_calls']:,}")
    out.append("")
    return out


def budget_section(record: RunRecord | None) -> list[str]:
    if record is None or not record.budgets:
        return []
    out = ["## Budgets", "", "| Budget | Used | Set |", "|---|---:|---:|"]
    for b in record.budgets:
        used, limit = _amount(b["used"], b["unit"]), _amount(b["limit"], b["unit"])
        out.append(f"| {b['name']} | {used} | {limit} |")
    return out + [""]


def tree_section(record: RunRecord | None, call_tree: dict[str, Any]) -> list[str]:
    """One row per level of the call tree, with its question and answer."""
    out = ["## Call tree", ""]
    levels = record.levels() if record is not None else []
    if not levels and call_tree:
        levels = list(level_from_tree(call_tree, "0", None).walk())
    if not levels:
        return out + ["_No level of the run was recorded yet._", ""]
    out += [
        "| Node | Depth | Question | Answer | Turns | Own model calls | Own tokens | Seconds "
        "| Stop |",
        "|---|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for lv in levels[:MAX_TREE_ROWS]:
        indent = "&nbsp;&nbsp;" * lv.depth
        stop = lv.stop_reason if lv.state == "finished" else lv.state
        out.append(
            f"| {indent}{lv.path} | {lv.depth} | {_cell(_preview(lv.question, 80))} | "
            f"{_cell(_preview(lv.answer, 80)) or '-'} | {lv.turn_count} | "
            f"{total_calls(lv.own_usage)} | {total_tokens(lv.own_usage):,} | "
            f"{_secs(lv.seconds)} | `{stop}` |"
        )
    if len(levels) > MAX_TREE_ROWS:
        more = len(levels) - MAX_TREE_ROWS
        out.append(f"\n_{more:,} more nodes are in the trajectory file and the viewer._")
    return out + [""]


def root_turns_section(records: list[dict[str, Any]]) -> list[str]:
    root_turns = [r for r in records if r.get("node") == "0"]
    out = ["## Root turns", ""]
    if not root_turns:
        out += ["_No root-level turns ran code._", ""]
    for r in root_turns:
        by = " (the stuck advice's code, run by the loop)" if r.get("by") == "loop" else ""
        out += [f"### Turn {r.get('turn', '?')}{by}", ""]
        code = "\n\n".join(r.get("code") or []) or "# (no code in this reply)"
        out += [_fence(code, "python"), ""]
        obs = str(r.get("observation", ""))
        if len(obs) > OUTPUT_CHARS:
            obs = obs[:OUTPUT_CHARS] + f"\n[... {len(obs) - OUTPUT_CHARS:,} more characters]"
        out += ["What the model saw next:", "", _fence(obs, "text"), ""]
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_report(
    result: Any,
    *,
    data_dir: str | Path,
    question: str,
    status: str,
    sources: list[dict[str, Any]] | None = None,
    models: dict[str, str | None] | None = None,
    error: str | None = None,
    sandbox: str | None = None,
    store: BlobStore | None = None,
    db_path: str | Path | None = None,
    record: RunRecord | None = None,
) -> tuple[Path, Path]:
    """Write `<data_dir>/reports/<run_id>.md`, `.jsonl` and `.html` (the viewer) for a
    RunResult; return the first two paths (the viewer is `html_viewer.html_path(md)`).
    `db_path`: the run database when it is not `<data_dir>/runs.sqlite` (a SQLite file or a
    postgresql:// URL); `store`: its blobs when not the database's own (`graph.stores`)."""
    from rlm_research.report.html_viewer import html_path, write_html

    md_path, jsonl_path = report_paths(data_dir, result.run_id)
    if record is None:
        known = {"question": question, "status": status, "sources": sources, "models": models}
        if error is not None:
            known["error"] = error
        known = {k: v for k, v in known.items() if v is not None}
        if store is not None:
            known["store"] = store
        try:
            record = gather_run(
                result.run_id, data_dir=data_dir, db_path=db_path, result=result, **known
            )
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint must not cost the report
            log.warning("run %s: reading its checkpoints failed (%s)", result.run_id, e)
            record = gather_run(
                result.run_id, data_dir=data_dir, db_path=db_path, result=result,
                checkpoints=False, **known,
            )  # fmt: skip
    records = record.trajectory()
    if not records and result.trajectory:  # nothing recorded per level: the API's flat list
        records = [{"node": "0" if t.get("depth", 0) == 0 else "?", **t} for t in result.trajectory]
    write_trajectory(jsonl_path, records)
    text = render_report(
        run_id=result.run_id,
        question=question,
        answer=result.answer or "",
        status=status,
        stop_reason=result.stop_reason,
        usage=result.usage or {},
        call_tree=result.call_tree or {},
        sources=sources,
        records=records,
        models=models,
        error=error,
        trajectory_file=jsonl_path.name,
        sandbox=sandbox,
        record=record,
    )
    atomic_write(md_path, text)
    write_html(record, html_path(md_path), trajectory_file=jsonl_path.name)
    return md_path, jsonl_path


# -- helpers -------------------------------------------------------------------------------------


def _fence(text: str, lang: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())


def _preview(text: str, n: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _amount(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    return _secs(value) if unit == "s" else f"{value:,}"


def _secs(value: Any) -> str:
    try:
        return f"{float(value):.1f} s"
    except (TypeError, ValueError):
        return "?"
