"""What every node needs to talk to a model: settings from the runtime, the transcript from the
blob store, one model call with its usage, and progress events for `stream`."""

from __future__ import annotations

import json
import time
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.settings import Settings
from rlm_research.graph.usage import Usage, model_call_usage
from rlm_research.tools.chat_models import build_chat_model, model_label
from rlm_research.tools.local_model import DeadlinePassed, EmbeddedChatModel

_ROLES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def settings_of(runtime: Runtime[Settings] | None) -> Settings:
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, Settings):
        return ctx
    if isinstance(ctx, dict):  # LangGraph Studio / the REST API pass the context as JSON
        return Settings(**{k: v for k, v in ctx.items() if k in Settings.field_names()})
    return Settings()


def blob_store(settings: Settings) -> BlobStore:
    from rlm_research.graph.stores import open_blob_store

    return open_blob_store(settings)  # the data folder's, or the run database's (PostgreSQL)


def put_message(store: BlobStore, role: str, content: str, full_ref: str | None = None) -> str:
    """A transcript message; `full_ref` names the uncut text when `content` was shortened."""
    message = {"role": role, "content": content}
    if full_ref:
        message["full_ref"] = full_ref
    return store.put_json(message)


def load_messages(store: BlobStore, refs: list[str]) -> list[AnyMessage]:
    out: list[AnyMessage] = []
    for ref in refs:
        msg = store.get_json(ref)
        out.append(_ROLES[msg["role"]](content=msg["content"]))
    return out


class OutOfTime(RuntimeError):
    """The run's time budget ran out before the call reached the model (it waited its turn for
    the serialised embedded model)."""


class ModelCallError(RuntimeError):
    """A model call that failed for good (after the client's own retries). The message is one
    line naming the model, its server and what went wrong; the node fails before writing
    anything, so the run resumes from the step before and finished calls are not repeated."""


def call_model(
    settings: Settings,
    depth: int,
    messages: list[AnyMessage],
    temperature: float | None = None,
    stop: list[str] | None = None,
    deadline: float | None = None,
) -> tuple[str, Usage]:
    """One model call. `stop` goes only to the embedded model: some hosted models (OpenAI's
    reasoning models) refuse the parameter, and the caller cuts the reply itself anyway.
    `deadline` too: a call to the embedded model that is still queued then raises OutOfTime."""
    spec = settings.model_for(depth)
    model = build_chat_model(
        spec,
        base_url=settings.base_url,
        temperature=settings.temperature if temperature is None else temperature,
        max_tokens=settings.max_completion_tokens,
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
    )
    extra: dict[str, Any] = {}
    if isinstance(model, EmbeddedChatModel):
        extra = {k: v for k, v in (("stop", stop), ("deadline", deadline)) if v is not None}
    attempts = max(0, settings.max_retries) + 1
    for attempt in range(1, attempts + 1):
        try:
            reply = model.invoke(messages, **extra)
            break
        except DeadlinePassed as e:
            raise OutOfTime(str(e)) from e
        except Exception as e:
            # The OpenAI client retries 429 / 5xx / timeouts / resets itself, but not a 200 whose
            # body is not JSON (a proxy cutting a reply short): it raised a bare JSONDecodeError
            # at once. Such a reply is as transient as a reset connection, so retry it here too.
            if _is_malformed(e) and attempt < attempts:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
                continue
            raise ModelCallError(_failure(spec, settings, e, attempts)) from e
    text = reply.content if isinstance(reply.content, str) else _flatten(reply.content)
    prompt_chars = sum(len(str(m.content)) for m in messages)
    usage = model_call_usage(model_label(spec), reply, prompt_chars)
    emit({"kind": "model_call", "depth": depth, "usage": usage})  # live token counts
    return text, usage


def _is_malformed(e: BaseException) -> bool:
    return _is_error(e, "APIResponseValidationError", (json.JSONDecodeError,))


def _failure(spec: Any, settings: Settings, e: BaseException, attempts: int) -> str:
    """One line for a failed call: "model openai:x at http://...: what happened (N attempts)"."""
    from rlm_research.graph.run_index import one_line

    where = f" at {settings.base_url}" if isinstance(spec, str) and settings.base_url else ""
    tries = f" ({attempts} attempts)" if attempts > 1 else ""
    status = getattr(e, "status_code", None)
    if _is_timeout(e):
        what = f"no reply within request_timeout={settings.request_timeout:g} s{tries}"
    elif _is_malformed(e):
        what = f"the server's reply was not valid JSON{tries}: {one_line(e)}"
    elif _is_connection_error(e) or status in (408, 409, 429) or (status or 0) >= 500:
        what = f"{one_line(e)}{tries}"  # the kinds the client retried before giving up
    else:
        what = one_line(e)
    try:
        label = model_label(spec)
    except Exception:  # noqa: BLE001 - only for the message
        label = str(spec)
    return f"model {label}{where}: {what}"


def _is_error(e: BaseException, openai_name: str, others: tuple[type, ...]) -> bool:
    """`e` is `openai.<openai_name>` (when that package is installed) or one of `others`."""
    try:
        import openai
    except ImportError:
        return isinstance(e, others)
    return isinstance(e, (getattr(openai, openai_name), *others))


def _is_timeout(e: BaseException) -> bool:
    import httpx

    return _is_error(e, "APITimeoutError", (TimeoutError, httpx.TimeoutException))


def _is_connection_error(e: BaseException) -> bool:
    import httpx

    return _is_error(e, "APIConnectionError", (ConnectionError, httpx.TransportError))


def _flatten(content: list[Any]) -> str:
    parts = [c if isinstance(c, str) else c.get("text", "") for c in content]
    return "".join(parts)


def emit(event: dict[str, Any]) -> None:
    """A progress event for `stream_mode="custom"`; silently dropped outside a streamed run."""
    try:
        get_stream_writer()(event)
    except Exception:  # noqa: BLE001 - progress must never break a run
        pass
