"""Runs on scripted models for the report and viewer tests: a depth-2 child and a batch of 8,
with model output that tries to break out of an HTML page; and the same run stopped early."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import BaseMessage
from rlm_research.graph.api import RunResult, run

from tests.support.scripted_models import RuleModel, py

HOSTILE = "</script><script>alert('x')</script><img src=x onerror=alert(1)> & <!--"
QUESTION = "What do the eight items say, and how many As are there?"
CONTEXT = "A line.\nA-B-A\n" * 20
ROOT_TURNS = [
    "Let me count first.\n" + py("r = sub_lm('count the As', context='A-A-A')\nprint(r)"),
    py(f"# {HOSTILE}\nrs = sub_lm_batched(['item %d' % i for i in range(8)])\nprint(rs)"),
    py("FINAL(r + ' / ' + rs[0])"),
]
# Every level with its answer: path -> answer
ANSWERS = {
    "0": "3 done / item 0 ok",
    "0.1": "3 done",
    "0.1.1": "done",
    **{f"0.{i + 2}": f"item {i} ok" for i in range(8)},
}
ANSWERS["0.5"] = f"item 3 ok {HOSTILE}"
MODEL_CALLS = 3 + 1 + 1 + 8  # root turns, the depth-1 child, its depth-2 leaf, the batch


def sub_reply(messages: list[BaseMessage]) -> str:
    last = str(messages[-1].content)
    if "Question: count the As" in last:  # depth 1: a REPL level of its own, one level deeper
        return py("n = context.count('A')\nleaf = sub_lm('say done')\nFINAL(f'{n} {leaf}')")
    item = re.search(r"Question: item (\d)", last)
    if item:
        extra = f" {HOSTILE}" if item.group(1) == "3" else ""
        return py(f"FINAL({'item ' + item.group(1) + ' ok' + extra!r})")
    return "done"  # depth 2: the deepest level answers directly


class RootModel(RuleModel):
    """The root's turns in order; `stop_at` (a turn number) raises there instead, as a model
    whose server went away would (or as Ctrl-C does, with KeyboardInterrupt)."""

    stop_at: int | None = None
    stop_with: Any = None

    def model_post_init(self, ctx: Any) -> None:
        super().model_post_init(ctx)
        self.fn = self.reply

    def reply(self, messages: list[BaseMessage]) -> str:
        turn = sum(1 for m in messages if m.type == "ai") + 1
        if self.stop_at is not None and turn >= self.stop_at:
            raise self.stop_with or RuntimeError("the model server went away")
        return ROOT_TURNS[min(turn, len(ROOT_TURNS)) - 1]


def settings_for(make_settings: Any, **extra: Any) -> Any:
    root = RootModel(stop_at=extra.pop("stop_at", None), stop_with=extra.pop("stop_with", None))
    sub = RuleModel(fn=sub_reply, delay=extra.pop("sub_delay", 0.0))
    return make_settings(model=root, sub_model=sub, max_depth=2, max_parallel=8, **extra)


def tree_run(make_settings: Any, run_id: str = "tree-run", **extra: Any) -> RunResult:
    """The finished run: root -> (count the As -> say done), 8 items; answers in ANSWERS."""
    return run(QUESTION, CONTEXT, settings=settings_for(make_settings, **extra), run_id=run_id)
