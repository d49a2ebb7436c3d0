"""The run viewer: one self-contained HTML file (inline CSS and JavaScript, no network, a
Content-Security-Policy that forbids any fetch) showing a RunRecord: question, answer, status and
why the run ended; the collapsible call tree with each level's turns (code highlighted, and what
the model saw next); a timeline of every level's steps with one bar per model call; usage per
model and budgets used against those set.

The page's script (`viewer_template.html`, package data) builds everything from one JSON blob
with `textContent` only, so a model's output is shown, never interpreted. Long texts are cut
here, more as the run grows, so a run with 500 sub-calls stays well under 5 MB.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from rlm_research.graph.usage import total_calls, total_tokens
from rlm_research.report.run_record import Level, RunRecord, why_it_ended

PAGE_TEXT_BUDGET = 2_500_000  # characters of text in one page, shared by every field
FIELD_MAX, FIELD_MIN = 8_000, 400  # what one code block or observation may keep
TEMPLATE = "viewer_template.html"
DATA_MARK = "/*RUN_DATA*/"


def html_path(md_path: str | Path) -> Path:
    return Path(md_path).with_suffix(".html")


def render_html(record: RunRecord, *, trajectory_file: str | None = None) -> str:
    """The page for `record`, as text."""
    template = resources.files("rlm_research.report").joinpath(TEMPLATE).read_text("utf-8")
    data = page_data(record, trajectory_file)
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    # Inside <script type="application/json">: no "</script>", no "<!--", whatever the model wrote.
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = f"rlm-research run {record.run_id}"
    page = template.replace("<!--TITLE-->", _escape_html(title))
    return page.replace(DATA_MARK, blob, 1)


def write_html(record: RunRecord, path: str | Path, *, trajectory_file: str | None = None) -> Path:
    from rlm_research.report.report_files import atomic_write

    path = Path(path)
    atomic_write(path, render_html(record, trajectory_file=trajectory_file))
    return path


def page_data(record: RunRecord, trajectory_file: str | None = None) -> dict[str, Any]:
    levels = record.levels()
    # Each turn's code and output, each level's question and answer (which counts twice).
    n_fields = sum(2 * len(lv.turns) + 3 for lv in levels)
    limit = field_limit(n_fields)
    where = f" (the whole text is in {trajectory_file})" if trajectory_file else ""
    starts = [lv.started for lv in levels if lv.started] + [
        s.started for lv in levels for s in lv.steps if s.node != "__start__"
    ]
    t0 = min(starts, default=None)
    return {
        "run": {
            "id": record.run_id,
            "question": cut(record.question, 20_000, where),
            "answer": cut(record.answer, 50_000, where),
            "status": record.status,
            "stop_reason": record.stop_reason,
            "why": why_it_ended(record),
            "error": record.error,
            "generated": _iso(record.generated_at),
            "now": _rel(record.generated_at, t0),
            "started": _iso(t0) if t0 else None,
            "resume": record.resume_command,
            "stopped_at": record.stopped_at,
            "models": {k: v for k, v in record.models.items() if v},
            "sources": record.sources[:200],
            "budgets": record.budgets,
            "usage": record.usage,
            "timed": record.timed,
            "trajectory_file": trajectory_file,
            "field_limit": limit,
        },
        "nodes": [node_data(lv, t0, limit, where) for lv in levels],
    }


def node_data(lv: Level, t0: float | None, limit: int, where: str) -> dict[str, Any]:
    return {
        "p": lv.path,
        "d": lv.depth,
        "q": cut(lv.question, limit, where),
        "a": cut(lv.answer, 2 * limit, where),
        "s": lv.stop_reason,
        "st": lv.state,
        "t0": _rel(lv.started, t0),
        "t1": _rel(lv.ended, t0),
        "sec": lv.seconds,
        "calls": total_calls(lv.own_usage),
        "tok": total_tokens(lv.own_usage),
        "tree_calls": total_calls(lv.usage),
        "tree_tok": total_tokens(lv.usage),
        "next": lv.next,
        "steps": [
            [s.node, _rel(s.started, t0), _rel(s.ended, t0), s.model_calls, s.turn]
            for s in lv.steps
            if s.node != "__start__"
        ],
        "turns": [turn_data(t, t0, limit, where) for t in lv.turns],
    }


def turn_data(t: dict[str, Any], t0: float | None, limit: int, where: str) -> dict[str, Any]:
    code = "\n\n".join(str(c) for c in t.get("code") or [])
    return {
        "n": t.get("turn"),
        "code": cut(code, limit, where),
        "obs": cut(str(t.get("observation", "")), limit, where),
        "ms": _rel(t.get("model_started"), t0),
        "msec": t.get("model_seconds"),
        "missing": bool(t.get("missing")),
        "by": "loop" if t.get("by") == "loop" else None,
    }


def field_limit(n_fields: int) -> int:
    """Characters one text (code, output, question) may keep: the page's budget shared out."""
    share = PAGE_TEXT_BUDGET // max(1, n_fields)
    return max(FIELD_MIN, min(FIELD_MAX, share))


def cut(text: str | None, limit: int, where: str = "") -> str:
    text = text or ""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit:,} more characters not shown here{where}]"


def _rel(t: float | None, t0: float | None) -> float | None:
    if t is None or t0 is None:
        return None
    return round(t - t0, 3)


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_viewer(run_id: str, *, db_path: str | Path, data_dir: str | Path | None = None) -> Path:
    """Write `<data_dir>/reports/<run_id>.html` from what the run's checkpoints, blobs and
    run-index row hold now, whatever state the run is in (finished, failed, interrupted or
    still going); return its path."""
    from rlm_research.report.report_files import report_paths
    from rlm_research.report.run_record import gather_run

    data_dir = Path(data_dir) if data_dir is not None else Path(db_path).parent
    md_path, jsonl_path = report_paths(data_dir, run_id)
    record = gather_run(run_id, data_dir=data_dir, db_path=db_path)
    return write_html(record, html_path(md_path), trajectory_file=jsonl_path.name)
