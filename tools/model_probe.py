"""The embedded model, tried in a child process before the main job uses it.

A llama.cpp build made for another CPU dies with SIGILL on its first matrix product, and a signal
kills the whole process with nothing but `Illegal instruction`. So the model is first loaded in a
child that reads a prompt of ~150 tokens (a batch, so the matrix kernels run) and writes a few
tokens; a death of the child becomes one line that says what failed and what to
do. A success is remembered in a stamp keyed by the llama.cpp build (its shared libraries), the
weights file and the CPU's flags, so a run pays the few seconds once per install, not per run.

Child:  python -m rlm_research.tools.model_probe MODEL.gguf   (prints one line, exit 0 when fine)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROBE_TIMEOUT = 300.0  # seconds: loading 1 GB and reading the prompt takes ~10 s on 2 cores
EXIT_NO_LLAMA = 3
REBUILD = (
    "rebuild llama-cpp-python for this CPU with `make rebuild-llama` (or "
    "scripts/build-llama-wheel.sh with other LLAMA_CMAKE_ARGS, docs/install.md), "
    "then run `rlm-research doctor`"
)
# ~150 tokens: a batched prompt (the matrix kernels a CPU may lack) that stays cheap on a busy
# machine.
PROBE_PROMPT = "Count the words in this log.\n" + "\n".join(
    f"2023-03-{d:02d} dome {d % 4} opened, seeing {d % 7}.{d % 3} arcsec, cryocooler nominal."
    for d in range(1, 6)
)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    line: str  # one line: what happened, and on failure what to do


def llama_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def child_command(gguf: Path) -> list[str]:
    """The child's argv (tests replace this to simulate a crash)."""
    return [sys.executable, "-m", "rlm_research.tools.model_probe", str(gguf)]


def probe_embedded_model(gguf: Path, *, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """Run the embedded model at `gguf` in a child process and say how that went."""
    env = dict(os.environ)
    # The child imports the same rlm_research as this process (a checkout or an install).
    import_root = str(Path(sys.modules["rlm_research"].__file__ or "").resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (import_root, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run(
            child_command(gguf), capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(
            False,
            f"the embedded model did not answer within {timeout:g} s (an overloaded machine?): "
            "try `rlm-research doctor` again, or use a hosted model (--model openai:...)",
        )
    except OSError as e:
        return ProbeResult(False, f"could not start the embedded model's check: {e}")
    if proc.returncode == 0:
        lines = proc.stdout.strip().splitlines()
        return ProbeResult(True, lines[-1] if lines else "it answered")
    return ProbeResult(False, describe_failure(proc.returncode, proc.stderr))


def describe_failure(returncode: int, stderr: str) -> str:
    """One line for a child that died: by a signal (negative code, or 128+N from a shell)."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if number in (signal.SIGILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGKILL, signal.SIGABRT):
        name = signal.Signals(number).name
        if number == signal.SIGILL:
            return (
                "the embedded model crashed with SIGILL (illegal instruction): this "
                f"llama-cpp-python build uses CPU instructions this machine lacks; {REBUILD}"
            )
        if number == signal.SIGKILL:
            return (
                "the embedded model was killed (SIGKILL), most likely for lack of memory: the "
                "1.5B model needs about 2.5 GB free; free some memory, or use --model local:0.5b "
                "or a hosted model"
            )
        return (
            f"the embedded model crashed with {name}: a broken llama-cpp-python build or "
            f"damaged weights; {REBUILD}"
        )
    if returncode == EXIT_NO_LLAMA:
        return "llama-cpp-python is not installed: pip install 'rlm-research[local]'"
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    return f"the embedded model's check failed (exit {returncode}): {last or 'no message'}"


# -- the stamp of a passed check -------------------------------------------------------------------
def build_key(gguf: Path) -> str:
    """What a passed check depends on: the llama.cpp libraries, the weights file, the CPU."""
    parts = [sys.executable]
    spec = importlib.util.find_spec("llama_cpp")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for lib in sorted((Path(folder) / "lib").glob("*")):
            st = lib.stat()
            parts.append(f"{lib} {st.st_size} {st.st_mtime_ns}")
    st = gguf.stat()
    parts.append(f"{gguf.resolve()} {st.st_size} {st.st_mtime_ns}")
    parts.append(_cpu_flags())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln for ln in f if ln.startswith(("flags", "Features"))), "")
    except OSError:
        return ""


def stamp_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "rlm-research" / "checks"


def check_embedded_model(gguf: Path, *, use_stamp: bool = True) -> ProbeResult:
    """The probe's result, from the stamp of an earlier pass when `use_stamp` and one exists;
    a pass writes the stamp."""
    stamp = stamp_dir() / f"embedded-{build_key(gguf)}.ok"
    if use_stamp and stamp.is_file():
        return ProbeResult(True, stamp.read_text().strip() or "passed before")
    result = probe_embedded_model(gguf)
    if result.ok:
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(result.line + "\n")
        except OSError:
            pass  # no stamp: the check simply runs again next time
    return result


# -- the child ---------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load the embedded model and write a few tokens.")
    parser.add_argument("gguf", type=Path)
    parser.add_argument("--tokens", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        import llama_cpp
    except ImportError:
        print("llama-cpp-python is not installed", file=sys.stderr)
        return EXIT_NO_LLAMA
    t0 = time.perf_counter()
    llama = llama_cpp.Llama(model_path=str(args.gguf), n_ctx=1024, verbose=False)
    t1 = time.perf_counter()
    out = llama.create_completion(PROBE_PROMPT, max_tokens=args.tokens, temperature=0.0)
    t2 = time.perf_counter()
    usage = out.get("usage", {})
    print(
        f"llama-cpp-python {llama_cpp.__version__} loaded {args.gguf.name} in {t1 - t0:.1f} s, "
        f"read {usage.get('prompt_tokens', '?')} prompt tokens and wrote "
        f"{usage.get('completion_tokens', '?')} in {t2 - t1:.1f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
