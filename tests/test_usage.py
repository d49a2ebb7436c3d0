"""Usage totals: the optional `input_tokens_evaluated` counter (prompt tokens the embedded model
really evaluated after its KV prefix cache) is kept, summed and shown only for models that
report it."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from rlm_research.graph import run
from rlm_research.graph.usage import add_usage, input_text, model_call_usage
from rlm_research.mcp_server.summaries import usage_line, usage_summary

from tests.support.scripted_models import RuleModel, py

# A local model that reports evaluated tokens next to a hosted one that does not.
MIXED_USAGE = {
    "models": {
        "local:1.5b": {"calls": 3, "input_tokens": 12345, "output_tokens": 40,
                       "input_tokens_evaluated": 3210},
        "openai:x": {"calls": 1, "input_tokens": 10, "output_tokens": 2},
    },
    "sub_calls": 1,
}  # fmt: skip


def test_model_call_usage_keeps_evaluated_only_when_reported():
    local = AIMessage(
        content="hi",
        usage_metadata={"input_tokens": 900, "output_tokens": 5, "total_tokens": 905},
        response_metadata={"prompt_tokens": 900, "prompt_tokens_evaluated": 120},
    )
    assert model_call_usage("local:1.5b", local, 3600)["models"]["local:1.5b"] == {
        "calls": 1,
        "input_tokens": 900,
        "output_tokens": 5,
        "input_tokens_evaluated": 120,
    }
    cached = AIMessage(content="hi", response_metadata={"prompt_tokens_evaluated": 0})
    assert model_call_usage("m", cached, 40)["models"]["m"]["input_tokens_evaluated"] == 0
    hosted = AIMessage(content="hi", response_metadata={"model_name": "gpt"})
    assert "input_tokens_evaluated" not in model_call_usage("h", hosted, 40)["models"]["h"]


def test_add_usage_sums_optional_counters_without_inventing_them():
    local = {"models": {"l": {"calls": 1, "input_tokens": 900, "output_tokens": 5,
                              "input_tokens_evaluated": 900}}, "sub_calls": 0}  # fmt: skip
    again = {"models": {"l": {"calls": 1, "input_tokens": 950, "output_tokens": 6,
                              "input_tokens_evaluated": 50}}, "sub_calls": 1}  # fmt: skip
    hosted = {"models": {"h": {"calls": 2, "input_tokens": 10, "output_tokens": 2}}}
    total = add_usage(add_usage(add_usage(None, local), again), hosted)
    assert total["models"]["l"] == {
        "calls": 2,
        "input_tokens": 1850,
        "output_tokens": 11,
        "input_tokens_evaluated": 950,
    }
    assert total["models"]["h"] == {"calls": 2, "input_tokens": 10, "output_tokens": 2}
    assert total["sub_calls"] == 1 and total["web_calls"] == 0
    assert add_usage(None, None) == {"models": {}, "sub_calls": 0, "web_calls": 0}


def test_usage_is_shown_with_the_evaluated_count_when_known():
    assert input_text({"input_tokens": 12345, "input_tokens_evaluated": 3210}) == (
        "12,345 (3,210 evaluated)"
    )
    assert input_text({"input_tokens": 12345}) == "12,345"
    assert input_text({"input_tokens": 5, "input_tokens_evaluated": 0}, " in") == (
        "5 in (0 evaluated)"
    )
    usage = MIXED_USAGE
    summary = usage_summary(usage)
    assert summary["models"]["local:1.5b"]["input_tokens_evaluated"] == 3210
    assert "input_tokens_evaluated" not in summary["models"]["openai:x"]
    line = usage_line(summary)
    assert "local:1.5b: 3 call(s), 12,345 in (3,210 evaluated) / 40 out" in line
    assert "openai:x: 1 call(s), 10 in / 2 out" in line


class CachingModel(RuleModel):
    """A rule model whose replies say, as the embedded model does, how many prompt tokens it
    evaluated: 100 a call here."""

    def _generate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> ChatResult:
        msg = super()._generate(messages, *a, **kw).generations[0].message
        meta = {"prompt_tokens_evaluated": 100}
        reply = AIMessage(content=msg.content, response_metadata=meta)
        return ChatResult(generations=[ChatGeneration(message=reply)])


def test_a_run_sums_evaluated_tokens_over_its_calls(make_settings):
    model = CachingModel(rules=[(r"Output", py("FINAL('done')"))], default=py("print(1)"))
    result = run("q?", "some text", settings=make_settings(model=model))
    assert result.answer == "done"
    (counts,) = result.usage["models"].values()
    assert counts["calls"] == 2
    assert counts["input_tokens_evaluated"] == 200
    assert counts["input_tokens"] > 200  # estimated from the characters sent


def test_a_run_on_a_model_that_does_not_report_it_has_no_such_key(make_settings):
    model = RuleModel(rules=[(r"Output", py("FINAL('done')"))], default=py("print(1)"))
    result = run("q?", "some text", settings=make_settings(model=model))
    (counts,) = result.usage["models"].values()
    assert set(counts) == {"calls", "input_tokens", "output_tokens"}


def test_the_report_shows_evaluated_tokens_when_known():
    from rlm_research.report.markdown import render_report

    usage = MIXED_USAGE
    md = render_report(run_id="r", question="q", answer="a", status="answered",
                       stop_reason="answered", usage=usage, call_tree={}, sources=[],
                       records=[])  # fmt: skip
    assert "| `local:1.5b` | 3 | 12,345 (3,210 evaluated) | 40 |" in md
    assert "| `openai:x` | 1 | 10 | 2 |" in md
    assert "| **total** | 4 | 12,355 | 42 |" in md  # not every model said: no partial sum
    del usage["models"]["openai:x"]
    md = render_report(run_id="r", question="q", answer="a", status="answered",
                       stop_reason="answered", usage=usage, call_tree={}, sources=[],
                       records=[])  # fmt: skip
    assert "| **total** | 3 | 12,345 (3,210 evaluated) | 40 |" in md
