"""The stub OpenAI server works with the real langchain-openai client."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from tests.support.stub_openai import (
    PROJECT_ROOT,
    Fault,
    RuleResponder,
    ScriptedResponder,
    StubOpenAI,
    StubProcess,
    read_count_file,
)


def chat(base_url: str, **kwargs) -> ChatOpenAI:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 5)
    return ChatOpenAI(base_url=base_url, api_key="test", model="stub", **kwargs)


def test_invoke_returns_content_and_usage() -> None:
    rules = [(r"capital of (?P<country>\w+)", "No idea about {country}; code: {'a': 1}")]
    with StubOpenAI(RuleResponder(rules, default="default: {last_user}")) as stub:
        msg = chat(stub.base_url).invoke("What is the capital of France?")
        assert msg.content == "No idea about France; code: {'a': 1}"
        assert msg.usage_metadata is not None
        assert msg.usage_metadata["output_tokens"] == len(msg.content) // 4 + 1
        assert msg.usage_metadata["total_tokens"] > msg.usage_metadata["output_tokens"]
        assert chat(stub.base_url).invoke("hello").content == "default: hello"
        assert stub.call_count == 2
        assert stub.calls[0]["messages"][-1]["content"].startswith("What is")


def test_stream_concatenates_and_reports_usage() -> None:
    reply = "```repl\nprint(len(context))\n```\nLet us look."
    with StubOpenAI(reply) as stub:
        chunks = list(chat(stub.base_url, stream_usage=True).stream("go"))
        assert "".join(c.content for c in chunks) == reply
        assert len(chunks) > 3
        total = chunks[0]
        for c in chunks[1:]:
            total = total + c
        assert total.usage_metadata is not None
        assert total.usage_metadata["output_tokens"] == len(reply) // 4 + 1
        assert stub.calls[0]["stream"] is True


def test_429_then_success_with_retries() -> None:
    script = ScriptedResponder([Fault.status(429, retry_after=0.01), "finally"])
    with StubOpenAI(script) as stub:
        assert chat(stub.base_url, max_retries=2).invoke("hi").content == "finally"
        assert stub.call_count == 2


def test_401_raises_authentication_error() -> None:
    with StubOpenAI([Fault.status(401)]) as stub, pytest.raises(openai.AuthenticationError):
        chat(stub.base_url).invoke("hi")


def test_other_faults_surface_as_client_errors() -> None:
    faults = [
        Fault.status(500),
        Fault.reset(),
        Fault.hang(2),
        Fault.malformed(),
        Fault.empty(),
        Fault.delay(0.2, "slow"),
        Fault.status(400, error_code="context_length_exceeded"),
    ]
    with StubOpenAI(ScriptedResponder(faults)) as stub:
        llm = chat(stub.base_url, timeout=0.5)
        with pytest.raises(openai.InternalServerError):
            llm.invoke("a")
        with pytest.raises(openai.APIConnectionError):
            llm.invoke("b")
        with pytest.raises(openai.APITimeoutError):
            llm.invoke("c")
        with pytest.raises(Exception) as err:  # noqa: B017 - whatever the client's parse error is
            llm.invoke("d")
        assert "JSON" in type(err.value).__name__ + str(err.value)
        assert llm.invoke("e").content == ""
        t0 = time.monotonic()
        assert chat(stub.base_url).invoke("f").content == "slow"
        assert time.monotonic() - t0 >= 0.2
        with pytest.raises(openai.BadRequestError) as err:
            llm.invoke("g")
        assert err.value.code == "context_length_exceeded"
        assert stub.call_count == 7


def test_models_endpoint_and_exhausted_script() -> None:
    with StubOpenAI(["only"]) as stub:
        models = httpx.get(f"{stub.base_url}/models").json()
        assert [m["id"] for m in models["data"]] == ["stub"]
        assert chat(stub.base_url).invoke("1").content == "only"
        with pytest.raises(openai.InternalServerError, match="exhausted"):
            chat(stub.base_url).invoke("2")


def test_subprocess_prints_ready_and_counts_calls(tmp_path: Path) -> None:
    rules = {"rules": [["ping", "pong"], ["boom", {"fault": "status", "code": 503}]]}
    with StubProcess({**rules, "default": "dflt"}, tmp_path) as proc:
        assert proc.base_url.startswith("http://127.0.0.1:")
        llm = chat(proc.base_url)
        assert llm.invoke("ping?").content == "pong"
        assert llm.invoke("else").content == "dflt"
        with pytest.raises(openai.InternalServerError):
            llm.invoke("boom")
        entries = proc.calls()
        assert [e["reply"] for e in entries] == ["pong", "dflt", ""]
        assert [e["fault"] for e in entries] == [None, None, "status"]
        assert entries[0]["messages"][-1]["content"] == "ping?"
        assert len(proc.calls(ok_only=True)) == 2


def test_cli_module_directly(tmp_path: Path) -> None:
    (tmp_path / "rules.json").write_text(json.dumps({"replies": ["one", "two"]}))
    count = tmp_path / "calls.jsonl"
    cmd = [sys.executable, "-m", "tests.support.stub_openai", "--port", "0",
           "--rules", str(tmp_path / "rules.json"), "--count-file", str(count)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY http://127.0.0.1:")
        base_url = line.split()[1]
        assert [chat(base_url).invoke(str(i)).content for i in range(2)] == ["one", "two"]
        # A call is logged once its reply is out, so a loaded machine may read the file first.
        deadline = time.monotonic() + 10
        while len(read_count_file(count)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(read_count_file(count)) == 2
    finally:
        proc.kill()  # crash tests SIGKILL: the count file must already hold every call
        proc.wait()
        proc.stdout.close()
    assert len(read_count_file(count)) == 2


def test_server_delay_runs_calls_in_parallel() -> None:
    with StubOpenAI("ok", delay=0.3) as stub:
        llm = chat(stub.base_url)
        t0 = time.monotonic()
        assert [m.content for m in llm.batch(["q"] * 8, config={"max_concurrency": 8})] == [
            "ok"
        ] * 8
        assert 0.3 <= time.monotonic() - t0 < 1.5
        assert stub.call_count == 8
