"""Prompt-processing and generation speed of the llama-cpp-python build this interpreter imports,
on the embedded model (Qwen2.5-Coder-1.5B Q4_K_M) at the benchmark's prompt sizes.

Used to choose how llama.cpp is built (docs/install.md): run it once per build, selecting the
build with PYTHONPATH (a folder a wheel was unpacked into) or another venv, e.g.

    python -m rlm_research.bench.llama_build_speed --label portable
    PYTHONPATH=/tmp/native-site:. python -m rlm_research.bench.llama_build_speed --label native

Prints one line per prompt size: prompt tokens/s and generation tokens/s (llama.cpp's own
timers), plus the CPU features the build uses. Numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "observatory_log_2023.txt"


def prompt_tokens(llama, size: int) -> list[int]:
    """`size` tokens of the bundled observatory log (repeated if it is shorter)."""
    text = EXAMPLE.read_text() if EXAMPLE.is_file() else "The dome opened at dusk. " * 4000
    tokens = llama.tokenize(text.encode(), add_bos=True)
    while len(tokens) < size:
        tokens += tokens[1:]
    return tokens[:size]


def measure(llama, size: int, gen: int) -> tuple[float, float]:
    """(prompt tokens/s, generation tokens/s) for a fresh `size`-token prompt and `gen` tokens."""
    import llama_cpp

    tokens = prompt_tokens(llama, size)
    llama.reset()
    llama._ctx.kv_cache_clear()
    llama_cpp.llama_perf_context_reset(llama._ctx.ctx)
    t0 = time.perf_counter()
    llama.eval(tokens)
    t1 = time.perf_counter()
    for _ in range(gen):  # greedy, never stopping early: always `gen` tokens
        llama.eval([llama.sample(temp=0.0)])
    t2 = time.perf_counter()
    perf = llama_cpp.llama_perf_context(llama._ctx.ctx)
    if perf.n_p_eval >= size and perf.t_p_eval_ms > 0 and perf.t_eval_ms > 0:
        return perf.n_p_eval / perf.t_p_eval_ms * 1e3, perf.n_eval / perf.t_eval_ms * 1e3
    return size / (t1 - t0), gen / (t2 - t1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="this build")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--gen", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the best is shown")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--gguf", type=Path, help="default: the embedded 1.5B weights")
    args = parser.parse_args(argv)

    import llama_cpp

    if args.gguf is None:
        from rlm_research.tools.local_weights import resolve_weights

        args.gguf = resolve_weights("1.5b")
    features = llama_cpp.llama_print_system_info().decode().strip()
    print(f"[{args.label}] llama-cpp-python {llama_cpp.__version__} from {llama_cpp.__file__}")
    print(f"[{args.label}] {features}")
    t0 = time.perf_counter()
    llama = llama_cpp.Llama(
        model_path=str(args.gguf),
        n_ctx=max(args.sizes) + args.gen + 64,
        n_batch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    print(f"[{args.label}] loaded in {time.perf_counter() - t0:.1f} s, {args.threads} threads")
    for size in args.sizes:
        runs = [measure(llama, size, args.gen) for _ in range(args.repeat)]
        pp, tg = max(r[0] for r in runs), max(r[1] for r in runs)
        print(
            f"[{args.label}] prompt {size:>5} tokens: {pp:7.1f} tok/s prompt, "
            f"{tg:6.1f} tok/s generation ({args.gen} tokens, best of {args.repeat})",
            flush=True,
        )


if __name__ == "__main__":
    main()
