"""`rlm-research show RUN --html [--open]`: the run's viewer page, written from its checkpoints
at any time (finished, failed, interrupted or still going), and opened in a browser on request."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rlm_research.cli.output import err

HtmlOpt = Annotated[
    bool,
    typer.Option(
        "--html", help="Write the run's HTML viewer now (from its checkpoints) and print its path."
    ),
]
OpenOpt = Annotated[
    bool, typer.Option("--open", help="Write the HTML viewer and open it in a web browser.")
]


def write_viewer_page(run_id: str, db: Path | str, data_dir: str, open_page: bool) -> Path:
    from rlm_research.report.html_viewer import write_viewer

    page = write_viewer(run_id, db_path=db, data_dir=data_dir)
    if open_page and not webbrowser.open(page.resolve().as_uri()):
        err.print("No web browser could be started; open the file yourself.")
    return page
