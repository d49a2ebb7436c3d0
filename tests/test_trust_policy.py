"""The trust boundary's parts on their own (docs/security.md): the address guard, the HTTP token
and Host rules, the source policy and the operator's client rules. No MCP client here; that is
tests/test_mcp_security.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from rlm_research.tools.address_guard import AddressGuard, BlockedAddress

from tests.support.hostile import SECRET, Capture, make_work


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return make_work(tmp_path)


@pytest.fixture
def capture():
    c = Capture()
    yield c
    c.close()


def test_guard_checks_every_resolved_address() -> None:
    answers = {"rebind.test": ["93.184.216.34", "127.0.0.1"], "inside.test": ["10.1.2.3"]}
    guard = AddressGuard(resolver=lambda host, port: answers[host])
    for url, fragment in [
        ("http://rebind.test/", "rebind.test (127.0.0.1) is a loopback"),  # one bad is enough
        ("http://100.64.0.1/", "reserved"),  # carrier-grade NAT
        ("http://inside.test/", "inside.test (10.1.2.3) is a private address"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0:80/", "unspecified"),
        ("http://100.100.100.200/", "cloud metadata"),
    ]:
        with pytest.raises(BlockedAddress, match="refused") as e:
            guard.check_url(url)
        assert fragment in str(e.value)
    with pytest.raises(BlockedAddress, match="loopback"):  # 127.0.0.1 as one number, resolved
        AddressGuard().check_url("http://2130706433/")
    public = AddressGuard(resolver=lambda host, port: ["93.184.216.34"])
    public.check_url("https://example.org/")  # a public address passes (no connection made)
    assert AddressGuard.allowing("a.test:8080").addresses("a.test", 8080) == ["a.test"]


def test_host_check_and_token_rules() -> None:
    """The Host check never opens up to any host: a wildcard bind answers to loopback names and
    the names the operator gives; a short or missing token is refused off loopback."""
    from rlm_research.mcp_server.http_auth import HttpSetupError, host_check, server_token

    wildcard = host_check("0.0.0.0", 8765, ["research.example.org"])
    assert wildcard.enable_dns_rebinding_protection
    assert "0.0.0.0:8765" not in wildcard.allowed_hosts
    assert {"127.0.0.1:8765", "localhost:8765", "research.example.org:8765"} <= set(
        wildcard.allowed_hosts
    )
    assert "http://research.example.org:8765" in wildcard.allowed_origins
    with pytest.raises(HttpSetupError, match="too short"):
        server_token("127.0.0.1", {"RLM_MCP_TOKEN": "short"})
    with pytest.raises(HttpSetupError, match="serves other machines"):
        server_token("192.168.1.5", {})
    assert server_token("10.0.0.1", {"RLM_MCP_TOKEN": "k" * 20}) == ("k" * 20, False)
    token, made = server_token("::1", {})
    assert made and len(token) >= 32


def test_the_cli_keeps_full_access(work: Path, capture: Capture) -> None:
    """The policy is for MCP clients only: the loader the CLI and the Python API use (no policy)
    reads what the machine's user names, loopback URLs included."""
    from rlm_research.tools.sources import load_sources

    loaded = load_sources(
        [str(work / ".env"), str(work / "innocent.txt"), f"{capture.url}/page"], max_bytes=10_000
    )
    assert all(SECRET in text for text in loaded.texts.values())
    assert len(loaded.texts) == 3


def test_a_root_walk_skips_secrets_links_and_the_run_store(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlm_research.tools.source_policy import SourcePolicy, project_store
    from rlm_research.tools.sources import load_sources

    db = work / "data" / "runs.sqlite"
    (work / "data" / "blobs").mkdir(parents=True)
    db.write_text(f"checkpoint {SECRET}")
    (work / "data" / "blobs" / "ab12").write_text(f"blob {SECRET}")
    policy = SourcePolicy(roots=(work.resolve(),), allow_secrets=False, protected=project_store(db))
    monkeypatch.chdir(work)
    loaded = load_sources(["."], max_bytes=100_000, policy=policy)
    assert sorted(loaded.texts) == ["./doc.txt", "./notes/a.txt"]
    assert "./notes/link.txt" in loaded.skipped and "./data/runs.sqlite" in loaded.skipped
    assert not any(SECRET in text for text in loaded.texts.values())


def test_operator_caps_web_switch_and_roots(tmp_path: Path) -> None:
    from rlm_research.graph.settings import Settings
    from rlm_research.mcp_server.client_policy import ClientPolicy, narrow_roots
    from rlm_research.mcp_server.failures import ToolFailure

    values = {
        "mcp_allow_web": False,
        "mcp_option_caps": {"max_turns": 5},
        "source_roots": [str(tmp_path)],
        "mcp_max_sources": 2,
    }
    policy = ClientPolicy.from_config(values, Settings(model="openai:mine"))
    policy.check_options({"max_turns": 5, "model": "openai:mine", "max_depth": 3})
    for options, message in [
        ({"max_turns": 6}, "option 'max_turns': at most 5 on this server (got 6)"),
        ({"max_depth": "4"}, "option 'max_depth': at most 3 on this server (got '4')"),
        ({"web": "yes"}, "option 'web': this server does not allow web research"),
        ({"url_guard": False}, "option 'url_guard': set by the server's operator, not by a client"),
        ({"mcp_allow_private_urls": True}, "set by the server's operator"),
    ]:
        with pytest.raises(ToolFailure) as e:
            policy.check_options(options)
        assert message in str(e.value)
    with pytest.raises(ToolFailure, match="does not allow web research"):
        policy.check_input("q", ["web://"])
    with pytest.raises(ToolFailure, match="too many sources"):
        policy.check_input("q", ["a", "b", "c"])
    confined = policy.confine(Settings(web=True))
    assert confined.web is False and confined.url_guard is True
    a, b = tmp_path / "a", tmp_path / "a" / "b"
    assert narrow_roots((a,), [b, Path("/etc")]) == (b,)
    assert narrow_roots((b,), [a]) == (b,)
    assert narrow_roots((a,), []) == ()
    assert narrow_roots((a,), None) == (a,)
