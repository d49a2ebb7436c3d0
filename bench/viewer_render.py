"""How long the run viewer takes to write and how big it gets, for a run with many sub-calls.

    python -m rlm_research.bench.viewer_render --sub-calls 500 [--data DIR] [--keep]

Makes a run on scripted models (no model server, no network): the root asks for `--sub-calls`
sub-calls in one batch, each child answers with `--answer-chars` characters and the root prints
them all, then answers. Then it times gathering the run record from the checkpoints, rendering
the page, and writing the markdown report, JSONL and viewer; prints seconds and sizes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

RUN_ID = "viewer-bench"
QUESTION = "How many parts were read?"


def make_big_run(
    data_dir: str | Path, sub_calls: int = 500, answer_chars: int = 3_000, run_id: str = RUN_ID
) -> Any:
    """A finished run with `sub_calls` sub-calls in one batch; returns its RunResult."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from rlm_research.graph.api import run
    from rlm_research.graph.settings import Settings

    batch = (
        f"rs = sub_lm_batched(['part %d of the report: what does it say?' % i "
        f"for i in range({sub_calls})])\nprint('\\n'.join(rs))"
    )
    root = FakeListChatModel(
        responses=[f"```python\n{batch}\n```", "```python\nFINAL(str(len(rs)))\n```"]
    )
    words = "The part says the cryocooler was replaced; serial SN-4471. "
    sub = FakeListChatModel(responses=[(words * (answer_chars // len(words) + 1))[:answer_chars]])
    settings = Settings(
        model=root,
        sub_model=sub,
        data_dir=str(data_dir),
        max_sub_calls=sub_calls + 10,
        max_parallel=16,
        cell_timeout=120.0,
    )
    return run(QUESTION, "a short context", settings=settings, run_id=run_id)


def measure(data_dir: Path, result: Any) -> dict[str, float]:
    from rlm_research.report.html_viewer import render_html
    from rlm_research.report.markdown import write_report
    from rlm_research.report.run_record import gather_run

    t0 = time.perf_counter()
    record = gather_run(result.run_id, data_dir=data_dir, result=result)
    t1 = time.perf_counter()
    page = render_html(record, trajectory_file=f"{result.run_id}.jsonl")
    t2 = time.perf_counter()
    md, jsonl = write_report(result, data_dir=data_dir, question=QUESTION, status="answered")
    t3 = time.perf_counter()
    return {
        "levels": len(record.levels()),
        "gather_s": t1 - t0,
        "render_s": t2 - t1,
        "write_all_s": t3 - t2,
        "html_mb": len(page.encode()) / 1e6,
        "md_kb": md.stat().st_size / 1e3,
        "jsonl_kb": jsonl.stat().st_size / 1e3,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sub-calls", type=int, default=500)
    parser.add_argument("--answer-chars", type=int, default=3_000)
    parser.add_argument("--data", type=Path, default=None, help="data folder (default: a temp one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp)
        t = time.perf_counter()
        result = make_big_run(data, args.sub_calls, args.answer_chars)
        print(f"run: {args.sub_calls} sub-calls in {time.perf_counter() - t:.1f} s")
        for key, value in measure(data, result).items():
            print(f"{key}: {value:,.3f}" if isinstance(value, float) else f"{key}: {value}")
        if args.data:
            print(f"viewer: {data / 'reports' / (result.run_id + '.html')}")


if __name__ == "__main__":
    main()
