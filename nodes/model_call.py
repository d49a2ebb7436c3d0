"""What every node needs to talk to a model: settings from the runtime, the transcript from the
blob store, one model call with its usage, and progress events for `stream`."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from graph.blob_store import BlobStore
from graph.settings import Settings
from graph.usage import Usage, model_call_usage
from tools.chat_models import build_chat_model, model_label

_ROLES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def settings_of(runtime: Runtime[Settings] | None) -> Settings:
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, Settings):
        return ctx
    if isinstance(ctx, dict):  # LangGraph Studio / the REST API pass the context as JSON
        return Settings(**{k: v for k, v in ctx.items() if k in Settings.field_names()})
    return Settings()


def blob_store(settings: Settings) -> BlobStore:
    from pathlib import Path

    return BlobStore(Path(settings.data_dir) / "blobs")


def put_message(store: BlobStore, role: str, content: str) -> str:
    return store.put_json({"role": role, "content": content})


def load_messages(store: BlobStore, refs: list[str]) -> list[AnyMessage]:
    out: list[AnyMessage] = []
    for ref in refs:
        msg = store.get_json(ref)
        out.append(_ROLES[msg["role"]](content=msg["content"]))
    return out


def call_model(settings: Settings, depth: int, messages: list[AnyMessage]) -> tuple[str, Usage]:
    spec = settings.model_for(depth)
    model = build_chat_model(
        spec,
        base_url=settings.base_url,
        temperature=settings.temperature,
        max_tokens=settings.max_completion_tokens,
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
    )
    reply = model.invoke(messages)
    text = reply.content if isinstance(reply.content, str) else _flatten(reply.content)
    prompt_chars = sum(len(str(m.content)) for m in messages)
    return text, model_call_usage(model_label(spec), reply, prompt_chars)


def _flatten(content: list[Any]) -> str:
    parts = [c if isinstance(c, str) else c.get("text", "") for c in content]
    return "".join(parts)


def emit(event: dict[str, Any]) -> None:
    """A progress event for `stream_mode="custom"`; silently dropped outside a streamed run."""
    try:
        get_stream_writer()(event)
    except Exception:  # noqa: BLE001 - progress must never break a run
        pass
