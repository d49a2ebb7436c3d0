"""`rlm-research doctor`'s checks of this install: the configured models, the embedded model (in a
child process, see `model_probe`), its weights' SHA-256, the REPL sandbox, the data folder, and
which API keys are set (names only, never values).

Each check ends `ok`, `warn` (works, with less: e.g. no bubblewrap), `fail` (the configured setup
cannot run) or `info`. The embedded model fails the check only when a configured model is local:
a hosted-model setup without the `[local]` extra is fine, and says so.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rlm_research.tools.model_errors import ModelConfigError

# The variables whose presence is reported (values are never read out).
KEY_NAMES = (
    "RLM_API_KEY",
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "TAVILY_API_KEY",
    "BRAVE_API_KEY",
    "BRAVE_SEARCH_API_KEY",
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail" | "info"
    detail: str  # one line


def run_checks(models: list[str], *, base_url: str | None, data_dir: str) -> list[Check]:
    """All checks, in the order a reader wants them: what the run needs first."""
    from rlm_research.tools.chat_models import parse_spec

    specs = list(dict.fromkeys(models))
    local = [s for s in specs if parse_spec(s)[0] == "local"]
    checks = [check_hosted_model(s, base_url) for s in specs if s not in local]
    checks += check_embedded(local)
    checks.append(check_sandbox())
    checks.append(check_data_dir(data_dir))
    checks.append(check_api_keys())
    return checks


def check_hosted_model(spec: str, base_url: str | None) -> Check:
    from rlm_research.tools.chat_models import check_model_reachable

    try:
        check_model_reachable(spec, base_url=base_url)
    except ModelConfigError as e:
        return Check(f"model {spec}", "fail", str(e))
    return Check(f"model {spec}", "ok", f"reachable{f' at {base_url}' if base_url else ''}")


def check_embedded(local_specs: list[str]) -> list[Check]:
    """Weights (full SHA-256) and a child-process run, for each configured local model; when
    none is configured, only whether the embedded model is installed."""
    from rlm_research.tools.model_probe import llama_installed

    if not llama_installed():
        hint = "pip install 'rlm-research[local]' (or `make install` in a checkout)"
        if local_specs:
            return [Check("embedded model", "fail", f"llama-cpp-python is not installed: {hint}")]
        return [Check("embedded model", "info", f"not installed, not needed here ({hint})")]
    if not local_specs:
        return [Check("embedded model", "info", "installed, not configured (use --model local)")]
    checks = []
    for spec in local_specs:
        weights = check_weights(spec)
        checks.append(weights)
        if weights.status == "ok":
            checks.append(check_embedded_run(spec))
    return checks


def check_weights(spec: str) -> Check:
    from rlm_research.tools.chat_models import parse_spec
    from rlm_research.tools.local_weights import LOCAL_WEIGHTS, _sha256_file, resolve_weights

    name = parse_spec(spec)[1]
    try:
        path = resolve_weights(name)
    except ModelConfigError as e:
        return Check(f"weights {spec}", "fail", str(e))
    digest = _sha256_file(path)  # in full, unlike a run, which trusts the marker of a past check
    expected = LOCAL_WEIGHTS[name].sha256 if name in LOCAL_WEIGHTS else None
    if expected and digest != expected:
        return Check(
            f"weights {spec}",
            "fail",
            f"{path} has SHA-256 {digest[:12]}..., expected {expected[:12]}...: delete it and "
            "reinstall the weights",
        )
    verified = "verified" if expected else "(no pinned hash for a file you chose)"
    return Check(f"weights {spec}", "ok", f"{path.name}, SHA-256 {digest[:12]}... {verified}")


def check_embedded_run(spec: str) -> Check:
    from rlm_research.tools.chat_models import parse_spec
    from rlm_research.tools.local_weights import resolve_weights
    from rlm_research.tools.model_probe import check_embedded_model

    result = check_embedded_model(resolve_weights(parse_spec(spec)[1]), use_stamp=False)
    return Check(f"embedded model {spec}", "ok" if result.ok else "fail", result.line)


def check_sandbox() -> Check:
    from rlm_research.tools.sandbox import bwrap_works

    works, reason = bwrap_works()
    if works:
        return Check("sandbox", "ok", "bubblewrap works: model code runs isolated")
    return Check(
        "sandbox",
        "warn",
        f"{reason}: model code runs with resource limits only (install bubblewrap; "
        "docs/sandbox.md)",
    )


def check_data_dir(data_dir: str) -> Check:
    folder = Path(data_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as e:
        return Check("data folder", "fail", f"{folder} is not writable: {e.strerror or e}")
    return Check("data folder", "ok", f"{folder} is writable")


def check_api_keys() -> Check:
    present = [name for name in KEY_NAMES if os.environ.get(name)]
    if not present:
        return Check("API keys", "info", "none set (the embedded model needs none)")
    return Check("API keys", "info", "set: " + ", ".join(present))
