"""Runs or resumes several RLM runs at once, one thread each, in one process, against one run
database: for the tests where several processes (and hosts) share a PostgreSQL database.

    python -m tests.support.pg_runner run|resume --db URL --data-dir DIR --base-url U RUN_ID...

Run `r` asks "run r" over `context_for(r)`. Prints {run_id: answer or "error: ..."} as one JSON
line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ThreadPoolExecutor

from rlm_research.graph import Settings, resume, run

CONTEXT_BYTES = 1_200_000  # two blob chunks


def token(run_id: str) -> str:
    return f"tok-{run_id}-{sum(map(ord, run_id)) * 7919}"


def context_for(run_id: str) -> str:
    head = f"{token(run_id)} is the first word of run {run_id}'s source.\n"
    line = f"filler for {run_id}\n"
    return head + line * ((CONTEXT_BYTES - len(head)) // len(line))


def expected_answer(run_id: str, parts: int = 4) -> str:
    return " | ".join(f"echo {token(run_id)} part {p}" for p in range(parts))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["run", "resume"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("run_ids", nargs="+")
    args = parser.parse_args()
    os.environ.setdefault("RLM_API_KEY", "test")
    settings = Settings(
        model="openai:stub",
        base_url=args.base_url,
        data_dir=args.data_dir,
        cell_timeout=120.0,
        max_retries=0,
        request_timeout=120.0,
    )

    def one(run_id: str) -> str:
        try:
            if args.mode == "run":
                result = run(
                    f"run {run_id}", context_for(run_id), settings=settings, run_id=run_id,
                    db_path=args.db,
                )  # fmt: skip
            else:
                result = resume(run_id, settings=settings, db_path=args.db)
        except Exception as e:  # noqa: BLE001 - reported to the test
            return f"error: {type(e).__name__}: {e}"
        return result.answer

    with ThreadPoolExecutor(len(args.run_ids)) as pool:
        answers = dict(zip(args.run_ids, pool.map(one, args.run_ids), strict=True))
    print(json.dumps(answers), flush=True)


if __name__ == "__main__":
    main()
