"""One real call into the embedded 1.5B model (slow: loads ~1 GB; `-m "not embedded"` skips)."""

from __future__ import annotations

import importlib.util

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from rlm_research.tools.chat_models import ModelConfigError, build_chat_model

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def model():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install -e '.[local]')")
    from rlm_research.tools.local_model import resolve_weights

    try:
        resolve_weights("1.5b")
    except ModelConfigError as e:
        pytest.skip(f"local weights unavailable: {e}")
    return build_chat_model("local", max_tokens=16)


def test_short_reply_with_usage_and_prefix_reuse(model) -> None:
    msgs = [
        SystemMessage("You are a calculator. Reply with the number only."),
        HumanMessage("What is 17 + 25?"),
    ]
    first = model.invoke(msgs)
    assert "42" in first.content
    usage = first.usage_metadata
    assert usage["input_tokens"] > 10
    assert 0 < usage["output_tokens"] <= 16
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]

    # The same prompt again: llama.cpp reuses the KV prefix and evaluates almost nothing.
    second = model.invoke(msgs)
    assert second.content == first.content  # temperature 0 is deterministic
    meta = second.response_metadata
    assert meta["prompt_tokens"] == usage["input_tokens"]
    assert meta["prompt_tokens_evaluated"] <= 2

    # Every model instance built for this weights file shares the one loaded llama.cpp model.
    assert build_chat_model("local:1.5b").loaded() is model.loaded()


def test_a_call_queued_past_its_deadline_is_refused(model) -> None:
    import time

    from rlm_research.tools.local_model import DeadlinePassed

    msgs = [HumanMessage("Name one colour.")]
    with pytest.raises(DeadlinePassed):
        model.invoke(msgs, deadline=time.time() - 1)
    assert model.invoke(msgs, deadline=time.time() + 600).content  # in time: answered


def test_a_prompt_too_long_to_read_before_the_deadline_is_refused_at_once(model) -> None:
    # llama.cpp cannot be stopped while it reads a prompt: one that would take longer than the
    # time left (at the speed measured on earlier prompts) is refused before it starts.
    import time

    from rlm_research.tools.local_model import DeadlinePassed

    words = " ".join(f"w{i}" for i in range(400))
    assert model.invoke([HumanMessage(f"{words}\nHow many words?")]).content  # measures speed
    long = " ".join(f"item{i}" for i in range(3_000))
    started = time.time()
    with pytest.raises(DeadlinePassed, match="would take about"):
        model.invoke([HumanMessage(f"{long}\nHow many items?")], deadline=time.time() + 2)
    assert time.time() - started < 2
    assert model.invoke([HumanMessage("Name one colour.")], deadline=time.time() + 600).content


def test_the_reading_time_rule_needs_a_speed_and_a_deadline() -> None:
    from rlm_research.tools.local_model import too_long_to_read

    assert too_long_to_read(10_000, 35.0, 1_000.0, 900.0).startswith("reading this prompt's")
    assert too_long_to_read(1_000, 35.0, 1_000.0, 900.0) == ""  # 29 s of 100
    assert too_long_to_read(10_000, None, 1_000.0, 900.0) == ""  # not measured yet
    assert too_long_to_read(10_000, 35.0, None, 900.0) == ""  # no deadline (the root)
