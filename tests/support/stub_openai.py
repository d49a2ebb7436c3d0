"""The tests' name for the stub OpenAI server, which lives in the installed package
(`rlm_research.bench.stub_openai`) so the benchmarks never import `tests`.

``python -m tests.support.stub_openai --port 0`` still works and prints ``READY <base_url>``.
"""

from __future__ import annotations

from pathlib import Path

from rlm_research.bench.stub_openai import (  # noqa: F401 - re-exported for the tests
    Fault,
    Message,
    Responder,
    RuleResponder,
    ScriptedResponder,
    StubOpenAI,
    StubProcess,
    _Handler,
    _Server,
    as_responder,
    estimate_tokens,
    fill,
    last_user_text,
    main,
    message_text,
    read_count_file,
    responder_from_json,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout, where `tests` is importable

if __name__ == "__main__":
    main()
