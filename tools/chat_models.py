"""The chat-model factory: one spec string (or a ready model) -> a LangChain chat model.

Graph nodes call `build_chat_model` with the run-wide settings each time they need a model, so
nothing is built at import time; the embedded model's weights are shared per process anyway
(see `tools.local_model`). `check_model_reachable` turns a bad key, a wrong URL or a missing
integration package into one line before a run starts, instead of a traceback mid-run.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any
from urllib.parse import urlparse

import httpx
from langchain_core.language_models.chat_models import BaseChatModel
from rlm_research.tools.model_errors import ModelConfigError

ACCEPTED_FORMS = (
    "local, local:1.5b, local:0.5b, /path/to/model.gguf, openai:<model> (with --base-url for any "
    "OpenAI-compatible server), openrouter:<model>, anthropic:<model>, "
    "<provider>:<model> (any langchain init_chat_model provider)"
)
OPENAI_URL = "https://api.openai.com/v1"
OPENROUTER_URL = "https://openrouter.ai/api/v1"
# Local OpenAI-compatible servers (vLLM, Ollama, llama.cpp) ignore the key but the client
# insists on one.
PLACEHOLDER_KEY = "sk-no-key-needed"

_PROVIDER_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "google_genai": "GOOGLE_API_KEY",
    "mistralai": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "together": "TOGETHER_API_KEY",
    "fireworks": "FIREWORKS_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "xai": "XAI_API_KEY",
}


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a model spec into (provider, name); the provider of embedded models is `local`.

    `local` / `local:1.5b` -> ("local", "1.5b"), `local:0.5b` -> ("local", "0.5b"),
    `x.gguf` -> ("local", "<path>"), `openai:gpt-4o-mini` -> ("openai", "gpt-4o-mini").
    """
    s = spec.strip()
    if s.lower().endswith(".gguf"):
        return "local", s
    if s.lower() in ("local", "local:1.5b"):
        return "local", "1.5b"
    if s.lower() == "local:0.5b":
        return "local", "0.5b"
    m = re.fullmatch(r"([a-z][a-z0-9_-]*):(\S.*)", s, re.IGNORECASE)
    if not m or m.group(1).lower() == "local":
        raise ModelConfigError(f"unknown model spec {spec!r}; accepted: {ACCEPTED_FORMS}")
    return m.group(1).lower().replace("-", "_"), m.group(2).strip()


def model_label(spec: str | BaseChatModel) -> str:
    """A stable short name for usage totals: `local:1.5b`, `gguf:<stem>`, `openai:gpt-4o-mini`."""
    if isinstance(spec, BaseChatModel):
        label = getattr(spec, "label", None)
        if isinstance(label, str) and label:
            return label
        try:
            ls = spec._get_ls_params()
        except Exception:  # third-party models may not implement it fully
            ls = {}
        name = ls.get("ls_model_name") or getattr(spec, "model_name", None)
        name = name or getattr(spec, "model", None)
        provider = ls.get("ls_provider") or type(spec).__name__
        return f"{provider}:{name}" if isinstance(name, str) and name else str(provider)
    provider, name = parse_spec(spec)
    if provider == "local" and name.lower().endswith(".gguf"):
        return f"gguf:{os.path.splitext(os.path.basename(name))[0]}"
    return f"{provider}:{name}"


def _api_key(provider: str, api_key: str | None, base_url: str | None) -> str | None:
    env = _PROVIDER_KEY_ENV.get(provider)
    key = api_key or (os.environ.get(env) if env else None) or os.environ.get("RLM_API_KEY")
    if not key and base_url:
        return PLACEHOLDER_KEY
    return key


def _no_key(provider: str) -> ModelConfigError:
    env = _PROVIDER_KEY_ENV.get(provider, f"{provider.upper()}_API_KEY")
    return ModelConfigError(f"no API key for {provider}: set {env} or RLM_API_KEY")


def _is_official_openai(base_url: str | None) -> bool:
    return base_url is None or urlparse(base_url).hostname == "api.openai.com"


def build_chat_model(
    spec: str | BaseChatModel,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    temperature: float = 0.0,
    max_tokens: int = 2048,
    timeout: float = 120.0,
    max_retries: int = 4,
) -> BaseChatModel:
    """A chat model for `spec`; a BaseChatModel instance is returned unchanged.

    Hosted models retry with exponential backoff on 429/5xx (`max_retries`). The embedded model
    loads lazily on its first call, once per process.
    """
    if isinstance(spec, BaseChatModel):
        return spec
    provider, name = parse_spec(spec)
    if provider == "local":
        from rlm_research.tools.local_model import EmbeddedChatModel

        return EmbeddedChatModel(
            weights=name, label=model_label(spec), temperature=temperature, max_tokens=max_tokens
        )
    if provider in ("openai", "openrouter"):
        from langchain_openai import ChatOpenAI

        url = base_url or (OPENROUTER_URL if provider == "openrouter" else None)
        key = _api_key(provider, api_key, base_url)
        if not key:
            raise _no_key(provider)
        extra: dict[str, Any] = {}
        if not _is_official_openai(url):
            # langchain-openai sends only `max_completion_tokens`; older vLLM / Ollama / llama.cpp
            # servers know just `max_tokens`, so send both to anything that is not OpenAI itself.
            extra["extra_body"] = {"max_tokens": max_tokens}
        return ChatOpenAI(
            model=name,
            base_url=url,
            api_key=key,
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
            max_retries=max_retries,
            stream_usage=True,
            **extra,
        )
    return _init_other(
        provider, name, base_url, api_key, temperature, max_tokens, timeout, max_retries
    )


def _init_other(
    provider: str,
    name: str,
    base_url: str | None,
    api_key: str | None,
    temperature: float,
    max_tokens: int,
    timeout: float,
    max_retries: int,
) -> BaseChatModel:
    try:
        from langchain.chat_models import init_chat_model  # type: ignore[import-not-found]
    except ImportError:
        try:
            from langchain_classic.chat_models import init_chat_model
        except ImportError:
            raise ModelConfigError(
                f"model provider {provider!r} needs langchain: pip install langchain "
                f"langchain-{provider.replace('_', '-')}"
            ) from None
    kwargs: dict[str, Any] = {
        "temperature": temperature,
        "max_tokens": max_tokens,
        "timeout": timeout,
        "max_retries": max_retries,
    }
    if base_url:
        kwargs["base_url"] = base_url
    # Pass a key only when we picked one up ourselves; otherwise the integration reads its own
    # environment variable (and some integrations have no key at all).
    key = api_key or os.environ.get("RLM_API_KEY")
    if key:
        kwargs["api_key"] = key
    try:
        with warnings.catch_warnings():  # langchain-classic's copy warns it moved to `langchain`
            warnings.simplefilter("ignore", DeprecationWarning)
            return init_chat_model(name, model_provider=provider, **kwargs)
    except ImportError as e:
        found = re.search(r"pip install (?:-U )?(\S+?)`?$", str(e).strip())
        pkg = found.group(1) if found else f"langchain-{provider.replace('_', '-')}"
        raise ModelConfigError(
            f"model provider {provider!r} needs its integration package: pip install {pkg}"
        ) from None
    except ValueError as e:
        if "provider" in str(e).lower():
            raise ModelConfigError(
                f"unknown model provider {provider!r}; accepted: {ACCEPTED_FORMS}"
            ) from None
        raise ModelConfigError(f"cannot build {provider}:{name}: {_one_line(e)}") from None
    except Exception as e:  # pydantic validation (e.g. a missing key) and the like
        raise ModelConfigError(f"cannot build {provider}:{name}: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def check_model_reachable(
    spec: str | BaseChatModel,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Fail fast, in one line (ModelConfigError), if the model cannot work; before a run.

    OpenAI-compatible endpoints: `GET {base_url}/models` (401/403 -> bad key, 404 -> endpoint
    not found, connection error -> cannot reach; a listed model set without `name` -> model not
    found). Local: the weights resolve, llama-cpp-python is installed, and the model runs in a
    child process (tools/model_probe.py; once per install). Other providers: the
    integration builds. Ready model instances (e.g. test fakes) are not checked.
    """
    if isinstance(spec, BaseChatModel):
        return
    provider, name = parse_spec(spec)
    if provider == "local":
        from rlm_research.tools.local_model import resolve_weights
        from rlm_research.tools.model_probe import check_embedded_model, llama_installed

        weights = resolve_weights(name)
        if not llama_installed():
            raise ModelConfigError(
                "llama-cpp-python is not installed (needed for local models): "
                "pip install -e '.[local]'"
            )
        # A llama.cpp build for another CPU would kill this process with SIGILL mid-run: try it
        # in a child first (once per install: a pass is stamped).
        probe = check_embedded_model(weights)
        if not probe.ok:
            raise ModelConfigError(probe.line)
        return
    if provider not in ("openai", "openrouter"):
        build_chat_model(spec, base_url=base_url, api_key=api_key)
        return
    url = (base_url or (OPENROUTER_URL if provider == "openrouter" else OPENAI_URL)).rstrip("/")
    key = _api_key(provider, api_key, base_url)
    if not key:
        raise _no_key(provider)
    headers = {"Authorization": f"Bearer {key}"}
    # OpenRouter lists models without checking the key; its /key endpoint does check it.
    probe = f"{url}/key" if provider == "openrouter" else f"{url}/models"
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            resp = client.get(probe, headers=headers)
            if provider == "openrouter" and resp.status_code < 400:
                resp = client.get(f"{url}/models", headers=headers)
    except httpx.HTTPError as e:
        raise ModelConfigError(f"cannot reach {url}: {_one_line(e) or type(e).__name__}") from None
    if resp.status_code in (401, 403):
        raise ModelConfigError(f"bad API key for {url} (HTTP {resp.status_code})")
    if resp.status_code == 404:
        raise ModelConfigError(f"model endpoint not found: {probe} answered 404 (check --base-url)")
    if resp.status_code >= 400:
        return  # 429/5xx may be transient; the model's own retries handle them during the run
    _check_listed(resp, name, url)


def _check_listed(resp: httpx.Response, name: str, url: str) -> None:
    try:
        ids = [str(m["id"]) for m in resp.json()["data"]]
    except Exception:
        return  # not the usual listing shape: nothing to check against
    # Compare without `:suffix` (Ollama tags, OpenRouter's `:free` / `:nitro` variants). A
    # single-model server (llama.cpp's) often answers to any name, so only a choice is checked.
    base = name.split(":")[0]
    if len(ids) > 1 and not any(i == name or i.split(":")[0] == base for i in ids):
        shown = ", ".join(ids[:8]) + (", ..." if len(ids) > 8 else "")
        raise ModelConfigError(f"model {name!r} not found at {url} (available: {shown})")


def check_models_reachable(
    model: Any, sub_model: Any = None, *, base_url: str | None = None
) -> None:
    """A run's root model and its sub model (when different), before the run starts; the
    `ModelConfigError` names the model."""
    specs = [model] + ([sub_model] if sub_model is not None and sub_model != model else [])
    for spec in specs:
        try:
            check_model_reachable(spec, base_url=base_url)
        except ModelConfigError as e:
            raise ModelConfigError(f"model {model_label(spec)}: {e}") from None
