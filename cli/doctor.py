"""`rlm-research doctor`: check this install before the main job (tools/self_check.py does the
checks; this presents them).

Exit codes: 0 when the configured models can run (warnings, e.g. no bubblewrap, do not fail it;
nor does a missing embedded model when only hosted models are configured), 1 when a check the
configured setup needs failed, 2 bad usage.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rlm_research.cli.options import BaseUrlOpt, ConfigOpt, ModelOpt, SubModelOpt, resolve_config
from rlm_research.cli.output import EXIT_FAILED, Failure, fail

out = Console(highlight=False, soft_wrap=True)
MARKS = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}


def doctor(
    model: ModelOpt = None,
    sub_model: SubModelOpt = None,
    base_url: BaseUrlOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check this install: the configured models (the embedded one is loaded in a child process
    and writes a few tokens), its weights' SHA-256, the REPL sandbox (bubblewrap), the data
    folder, and which API keys are set (names only).

    Exit 0 when the configured models can run, 1 when a check they need failed. Without the
    [local] extra and with a hosted --model, the embedded model is reported as not installed and
    the exit code is 0.
    """
    from rlm_research.tools.self_check import run_checks

    try:
        loaded = resolve_config(
            {"model": model, "sub_model": sub_model, "base_url": base_url}, config
        )
    except Failure as e:
        fail(e, json_out=False)
    s = loaded.settings
    models = [str(m) for m in (s.model, s.sub_model) if m is not None]
    checks = run_checks(models, base_url=s.base_url, data_dir=s.data_dir)
    for c in checks:
        mark = MARKS.get(c.status, "    ")
        out.print(f"{mark} {escape(c.name)}: {escape(c.detail)}")
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        out.print(
            f"[bold red]{len(failed)} check(s) failed[/]: the run would not work as configured"
        )
        raise typer.Exit(EXIT_FAILED)
    out.print("[green]ready[/]")
