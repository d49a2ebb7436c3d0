"""What the CLI says and how it ends: exit codes, the stderr console, one-line failures, and
stdout writers for text and JSON that tolerate a closed pipe."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

err = Console(stderr=True, highlight=False, soft_wrap=True)


class Failure(Exception):
    """Stop the command with one red line and an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED, run_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.run_id = run_id


def fail(exc: Failure, json_out: bool) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    if json_out:
        status = "interrupted" if exc.code == EXIT_INTERRUPTED else "error"
        print_json({"run_id": exc.run_id, "status": status, "error": str(exc)})
    raise typer.Exit(exc.code)


def print_json(obj: Any) -> None:
    try:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str, indent=2) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass


def echo(text: str) -> None:
    try:
        sys.stdout.write(text.rstrip("\n") + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass


def resume_hint(run_id: str, db: Path | str, explicit_db: bool) -> str:
    from rlm_research.graph.stores import describe

    return f"rlm-research resume {run_id}" + (f" --db {describe(db)}" if explicit_db else "")
