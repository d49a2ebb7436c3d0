"""A run's markdown report on demand, for a run that has none (cancelled, crashed, or started
on another host), from its last checkpoint and its run-index row. A run that ends in this
process gets its report from the lifecycle (graph.run_lifecycle.write_run_report); this is for
front ends (the MCP server's get_report) asked about any run in the store."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from rlm_research.graph import run_index
from rlm_research.graph.settings import Settings

log = logging.getLogger("rlm_research.run")


def report_path(db: Path | str, run_id: str, row: dict[str, Any], data_dir: Path) -> Path:
    """The run's report, written first if it has none (or its file is gone, or it was written
    on another host)."""
    path = Path(row["report"]) if row.get("report") else None
    if path is None or not path.is_file():
        path = write_report_from_store(db, run_id, row, data_dir)
    return path


def write_report_from_store(
    db: Path | str, run_id: str, row: dict[str, Any], data_dir: Path
) -> Path:
    """A report for a run that has none yet (cancelled, crashed, or started elsewhere),
    from its last checkpoint, else from its row."""
    from rlm_research.graph.stores import blob_store_for
    from rlm_research.report.markdown import write_report

    md_path, _ = write_report(
        stored_result(db, run_id, row, data_dir),
        data_dir=data_dir,
        question=row.get("question") or "",
        status=row["status"],
        sources=row.get("sources"),
        models={"model": row.get("model"), "sub_model": row.get("sub_model")},
        error=row.get("error"),
        store=blob_store_for(db, data_dir),
    )
    if row["status"] != "running":  # a running run gets its final report when it ends
        run_index.set_report(db, run_id, md_path)
    return md_path


def stored_result(db: Path | str, run_id: str, row: dict[str, Any], data_dir: Path) -> Any:
    """The run's result from its last checkpoint (`graph.api.load_result`), its run-index row
    filling in what the checkpoint lacks, or standing in for a run with no checkpoint."""
    from rlm_research.graph.api import RunResult, load_result
    from rlm_research.graph.blob_store import BlobNotFound

    saved = None
    if run_index.has_checkpoints(db, run_id):
        try:
            saved = load_result(run_id, settings=Settings(data_dir=str(data_dir)), db_path=db)
        except BlobNotFound as e:  # a damaged store: the row still says how the run went
            log.warning("run %s: its checkpoint refers to a missing blob: %s", run_id, e)
    if saved is None:
        return RunResult(
            run_id=run_id,
            answer=row.get("answer") or "",
            stop_reason=row.get("stop_reason") or "unfinished",
            usage=row.get("usage") or {},
            call_tree={},
        )
    # load_result says "unfinished" when the checkpoint has no stop reason (no node sets it)
    stop_reason = saved.stop_reason
    if stop_reason == "unfinished":
        stop_reason = row.get("stop_reason") or "unfinished"
    return dataclasses.replace(
        saved,
        answer=saved.answer or row.get("answer") or "",
        stop_reason=stop_reason,
        usage=saved.usage or row.get("usage") or {},
    )
