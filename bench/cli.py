"""`rlm-research bench ...`: the benchmarks from the shell.

Mount on the main CLI (cli/main.py) with:

    from rlm_research.bench.cli import app as bench_app
    app.add_typer(bench_app, name="bench")

then `rlm-research bench frames --mode closed --limit 20` and
`rlm-research bench quality --tasks needle --sizes 100K --seeds 1 2`.
Standalone: `python -m bench.cli frames --mode closed --limit 20`.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="bench",
    help="Benchmarks: FRAMES, and generated long-context tasks (rlm vs plain vs official).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def frames(
    mode: Annotated[str, typer.Option(help="closed (question only) or oracle (with articles)")] = (
        "closed"
    ),
    limit: Annotated[int | None, typer.Option(help="at most this many questions")] = None,
    start: Annotated[int, typer.Option(help="skip this many questions first")] = 0,
    system: Annotated[str, typer.Option(help="rlm or plain")] = "rlm",
    model: Annotated[str, typer.Option(help="model spec: local, openai:<name>, ...")] = "local",
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint")] = None,
    judge_model: Annotated[
        str | None, typer.Option(help="judge model spec, or `none` (default: --model)")
    ] = None,
    judge_base_url: Annotated[str | None, typer.Option()] = None,
    dataset_file: Annotated[
        str | None, typer.Option(help="local copy of the dataset (TSV/CSV/JSONL)")
    ] = None,
    articles_dir: Annotated[str, typer.Option(help="oracle mode: article text files")] = (
        "frames_articles"
    ),
    out: Annotated[str | None, typer.Option(help="results JSONL (resumable)")] = None,
    max_turns: Annotated[int, typer.Option()] = 12,
    timeout: Annotated[float, typer.Option(help="seconds per question")] = 1800.0,
) -> None:
    """FRAMES (google/frames-benchmark), graded by an LLM judge with a normalised-match fallback."""
    from rlm_research.bench import frames as fr

    argv = ["--mode", mode, "--system", system, "--model", model, "--start", str(start)]
    argv += ["--articles-dir", articles_dir, "--max-turns", str(max_turns)]
    argv += ["--timeout", str(timeout)]
    for flag, val in (
        ("--limit", limit),
        ("--base-url", base_url),
        ("--judge-model", judge_model),
        ("--judge-base-url", judge_base_url),
        ("--dataset-file", dataset_file),
        ("--out", out),
    ):
        if val is not None:
            argv += [flag, str(val)]
    try:
        opts = fr.build_parser().parse_args(argv)
    except SystemExit as exc:
        raise typer.Exit(2) from exc
    raise typer.Exit(fr.run_main(opts))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def quality(ctx: typer.Context) -> None:
    """Generated long-context tasks; options as `python -m bench.quality --help`."""
    from rlm_research.bench import quality as q

    q.main(list(ctx.args))


if __name__ == "__main__":
    app()
