"""The run's HTML viewer as an MCP embedded resource, offered by `get_report` beside the
markdown: the page written with the report, or written now from the checkpoints when it is
missing or the run is still going."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.types import EmbeddedResource, TextResourceContents


def viewer_resource(
    db: Path | str, data_dir: Path, run_id: str, row: dict[str, Any], md_path: Path
) -> EmbeddedResource:
    from rlm_research.report.html_viewer import html_path, write_viewer

    page = html_path(md_path)
    if row.get("status") == "running" or not page.is_file():
        page = write_viewer(run_id, db_path=db, data_dir=data_dir)
    contents = TextResourceContents(
        uri=page.resolve().as_uri(), mime_type="text/html", text=page.read_text(encoding="utf-8")
    )
    return EmbeddedResource(type="resource", resource=contents)
