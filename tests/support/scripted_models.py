"""Scripted chat models for fast tests: a fixed script for a root, and a rule model whose reply
depends on the conversation, so parallel sub-calls stay deterministic."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult


def py(code: str) -> str:
    """A model reply that is one python code block."""
    return f"```python\n{code}\n```"


def script(*replies: str) -> FakeListChatModel:
    """A model that gives these replies in order (then starts over)."""
    return FakeListChatModel(responses=list(replies))


class RuleModel(BaseChatModel):
    """Replies with the first rule whose regex matches the last message (`{0}`, `{1}`... are the
    match groups), or calls `fn(messages)` when given. Counts its calls; may sleep per call."""

    rules: Sequence[tuple[str, str]] = ()
    default: str = "OK"
    fn: Callable[[list[BaseMessage]], str] | None = None
    delay: float = 0.0
    calls: list[str] = []
    lock: Any = None

    def model_post_init(self, _ctx: Any) -> None:
        self.calls = []
        self.lock = threading.Lock()

    @property
    def _llm_type(self) -> str:
        return "rule-model"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        if self.delay:
            time.sleep(self.delay)
        last = str(messages[-1].content)
        with self.lock:
            self.calls.append(last)
        reply = self.fn(messages) if self.fn else self._by_rule(last)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])

    def _by_rule(self, last: str) -> str:
        for pattern, reply in self.rules:
            m = re.search(pattern, last, re.S)
            if m:
                return reply.format(m.group(0), *m.groups())
        return self.default
