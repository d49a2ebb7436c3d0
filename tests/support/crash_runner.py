"""Runs or resumes one RLM run in its own process, for crash tests that SIGKILL it.

    python -m tests.support.crash_runner run|resume --db D --run-id R --base-url U [--max-depth N]
        [--model openai:NAME]
        [--data-dir DIR]

`--db` is a SQLite file (its folder is the data folder) or a postgresql:// URL (then give the
local `--data-dir`).

Prints the result as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os

from rlm_research.graph import Settings, resume, run

QUESTION = "main question"
CONTEXT = "alpha beta gamma " * 200


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["run", "resume"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--max-depth", type=int, default=1)
    parser.add_argument("--model", default="openai:stub")
    parser.add_argument("--data-dir", help="default: the SQLite file's folder")
    args = parser.parse_args()
    os.environ.setdefault("RLM_API_KEY", "test")
    settings = Settings(
        model=args.model,
        base_url=args.base_url,
        max_depth=args.max_depth,
        data_dir=args.data_dir or os.path.dirname(args.db),
        cell_timeout=60.0,
    )
    if args.mode == "run":
        result = run(QUESTION, CONTEXT, settings=settings, run_id=args.run_id, db_path=args.db)
    else:
        result = resume(args.run_id, settings=settings, db_path=args.db)
    print(json.dumps({"answer": result.answer, "stop_reason": result.stop_reason}), flush=True)


if __name__ == "__main__":
    main()
