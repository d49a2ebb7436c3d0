"""FRAMES (google/frames-benchmark, arXiv 2409.12941): multi-hop factual questions over Wikipedia.

    python -m bench.frames --mode closed --limit 20 --out bench/results/frames.jsonl
    python -m bench.frames --mode oracle --articles-dir wiki/ --dataset-file frames.tsv --limit 20

Modes:
- `closed`: the question only (no sources): what the model knows, with the RLM loop around it.
- `oracle`: the question with the text of its Wikipedia articles (the row's `wiki_links`) as
  sources, one REPL variable per article. The network may be closed, so articles come from
  `--articles-dir`: one file per article named after the URL's last path segment
  (`https://en.wikipedia.org/wiki/Jane_Ballou` -> `Jane_Ballou.txt` or `.md`, URL-unquoted).
  Missing articles are listed in the row; a row with none is not run (`no articles`).

Data: `--dataset-file` (the dataset's TSV / CSV / JSONL: columns `Prompt`, `Answer`, `wiki_links`,
`wikipedia_link_1..11+`, `reasoning_types`) or, without one, `datasets.load_dataset(
"google/frames-benchmark", split="test")`, which needs the network: when it fails, the runner
says so and stops (exit code 2).

Grading: an LLM judge (`--judge-model`, default the run's model; `--judge-model none` for no
judge) asked whether the answer means the gold answer, replying TRUE or FALSE; when the judge
fails or replies neither, a deterministic normalised match decides (the gold's normalised words
appear in the answer, or the numbers agree). Each row records which grader decided.

Resumable: rows already in `--out` (same index, mode, system, model) are skipped.
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime
import json
import re
import sys
import tempfile
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rlm_research.bench.tasks import normalize

DATASET = "google/frames-benchmark"
JUDGE_PROMPT = """\
You grade answers to questions. Decide whether the predicted answer means the same as the \
ground-truth answer for this question. Small differences in wording or formatting are fine; a \
different fact, number or name is not. An answer that hedges between several options is wrong.

Question: {question}
Ground-truth answer: {gold}
Predicted answer: {answer}

Reply with one word: TRUE if the predicted answer is correct, FALSE if not."""
PLAIN_SYSTEM = "Answer the question accurately and briefly."
ORACLE_USER = "{question}\n\nSources:\n{sources}"


class DatasetUnavailable(RuntimeError):
    """The FRAMES data could not be loaded (no network, no `datasets`, no file)."""


# ---------------------------------------------------------------------------------------------
# Data


def parse_links(row: dict[str, Any]) -> list[str]:
    """The row's Wikipedia URLs: `wiki_links` (a Python list literal in the TSV, or a list), else
    the `wikipedia_link_*` columns."""
    raw = row.get("wiki_links")
    links: list[str] = []
    if isinstance(raw, list):
        links = [str(x) for x in raw]
    elif isinstance(raw, str) and raw.strip():
        try:
            val = ast.literal_eval(raw.strip())
            links = [str(x) for x in val] if isinstance(val, (list, tuple)) else [str(val)]
        except (ValueError, SyntaxError):
            links = re.findall(r"https?://[^\s'\",\]]+", raw)
    if not links:
        cols = sorted(
            (k for k in row if k.startswith("wikipedia_link_")),
            key=lambda k: int(re.sub(r"\D", "", k) or 0),
        )
        links = [str(row[k]) for k in cols if row.get(k) and str(row[k]).startswith("http")]
    return [u.strip() for u in links if u and u.strip()]


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return data if isinstance(data, list) else data.get("rows", [])
    delim = "\t" if path.suffix in (".tsv", ".tab") else ","
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter=delim))


def load_frames(dataset_file: str | Path | None = None) -> list[dict[str, Any]]:
    """FRAMES rows as dicts (with an `index`), from a file or the Hugging Face hub."""
    if dataset_file:
        rows = read_rows(Path(dataset_file))
    else:
        try:
            import datasets  # type: ignore[import-not-found]
        except ImportError as exc:
            raise DatasetUnavailable(
                "the `datasets` package is not installed (make install-frames, or pip install "
                "datasets), and no --dataset-file was given"
            ) from exc
        try:
            ds = datasets.load_dataset(DATASET, split="test")
        except Exception as exc:  # offline: ConnectionError, OfflineModeIsEnabled, HfHubHTTPError
            raise DatasetUnavailable(
                f"could not load {DATASET} from the Hugging Face hub "
                f"({type(exc).__name__}: {str(exc)[:200]}); the network may be closed: pass "
                "--dataset-file with a local copy of test.tsv"
            ) from exc
        rows = [dict(r) for r in ds]
    out = []
    for i, r in enumerate(rows):
        r = dict(r)
        idx = r.get("Unnamed: 0", r.get("index", i))
        r["index"] = int(idx) if str(idx).strip().lstrip("-").isdigit() else i
        r["links"] = parse_links(r)
        out.append(r)
    return out


def article_name(url: str) -> str:
    """`https://en.wikipedia.org/wiki/Jane_Ballou#Life` -> `Jane_Ballou`."""
    path = urllib.parse.urlparse(url).path
    name = urllib.parse.unquote(path.rsplit("/", 1)[-1])
    return name.replace(" ", "_")


def load_articles(links: Iterable[str], articles_dir: str | Path) -> tuple[dict[str, str], list]:
    """{variable-safe name: text} for the links found in `articles_dir`, and the missing links."""
    base = Path(articles_dir)
    found: dict[str, str] = {}
    missing: list[str] = []
    for url in links:
        name = article_name(url)
        path = next(
            (
                base / f"{name}{ext}"
                for ext in (".txt", ".md", "")
                if (base / f"{name}{ext}").is_file()
            ),
            None,
        )
        if path is None:
            missing.append(url)
            continue
        var = re.sub(r"\W+", "_", name).strip("_").lower() or f"article_{len(found) + 1}"
        if var[0].isdigit():
            var = "a_" + var
        found[var] = path.read_text(encoding="utf-8", errors="replace")
    return found, missing


# ---------------------------------------------------------------------------------------------
# Grading


def normalized_match(answer: str, gold: str) -> bool:
    """Deterministic fallback: every normalised word of the gold appears in the answer, in order
    and contiguously; or, for numeric golds, the answer contains the same number."""
    a, g = normalize(answer or ""), normalize(gold or "")
    if not g or not a:
        return False
    if re.search(rf"(?<!\w){re.escape(g)}(?!\w)", a):
        return True
    gnums = re.findall(r"\d+(?:\.\d+)?", (gold or "").replace(",", ""))
    if gnums and len(g.split()) <= 3:
        anums = re.findall(r"\d+(?:\.\d+)?", (answer or "").replace(",", ""))
        return all(n in anums for n in gnums)
    return False


def parse_verdict(text: str) -> bool | None:
    t = text.strip().upper()
    found = re.findall(r"\b(TRUE|FALSE|CORRECT|INCORRECT)\b", t)
    if not found:
        return None
    return found[0] in ("TRUE", "CORRECT")


def grade(question: str, gold: str, answer: str, judge: Any | None) -> tuple[bool, str, str | None]:
    """(correct, grader, judge reply): `llm` when the judge gave a verdict, else `match`."""
    if judge is not None and (answer or "").strip():
        from langchain_core.messages import HumanMessage

        try:
            reply = judge.invoke(
                [HumanMessage(JUDGE_PROMPT.format(question=question, gold=gold, answer=answer))]
            )
            text = reply.content if isinstance(reply.content, str) else str(reply.content)
            verdict = parse_verdict(text)
            if verdict is not None:
                return verdict, "llm", text[:200]
        except Exception as exc:  # the fallback decides
            return normalized_match(answer, gold), "match", f"judge failed: {exc}"[:200]
    return normalized_match(answer, gold), "match", None


# ---------------------------------------------------------------------------------------------
# Systems


def run_system(
    system: str, question: str, sources: dict[str, str] | None, opts: argparse.Namespace
) -> dict[str, Any]:
    if system == "rlm":
        from rlm_research.bench.quality import rlm_settings
        from rlm_research.graph import run

        res = run(question, sources or None, settings=rlm_settings(opts))
        return {
            "answer": res.answer,
            "stop_reason": res.stop_reason,
            "usage": res.usage,
            "turns": sum(1 for t in res.trajectory if t.get("depth", 0) == 0),
        }
    if system == "plain":
        from langchain_core.messages import HumanMessage, SystemMessage
        from rlm_research.bench.quality import count_tokens_fn, truncate_to_tokens
        from rlm_research.graph.usage import model_call_usage
        from rlm_research.tools.chat_models import build_chat_model, model_label

        spec = opts.model_obj or opts.model
        model = build_chat_model(spec, base_url=opts.base_url, temperature=0.0, max_tokens=256)
        user = question
        if sources:
            joined = "\n\n".join(f"## {k}\n{v}" for k, v in sources.items())
            joined, _ = truncate_to_tokens(joined, opts.window - 1024, count_tokens_fn(model))
            user = ORACLE_USER.format(question=question, sources=joined)
        msgs = [SystemMessage(PLAIN_SYSTEM), HumanMessage(user)]
        reply = model.invoke(msgs)
        content = reply.content if isinstance(reply.content, str) else str(reply.content)
        usage = model_call_usage(model_label(spec), reply, len(PLAIN_SYSTEM) + len(user))
        return {"answer": content.strip(), "stop_reason": "answered", "usage": usage}
    raise ValueError(f"unknown system {system!r}")


# ---------------------------------------------------------------------------------------------
# Runner


def load_done(path: Path | None) -> tuple[list[dict[str, Any]], set[tuple]]:
    rows: list[dict[str, Any]] = []
    if path and path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows, {(r["index"], r["mode"], r["system"], r["model"]) for r in rows}


def build_judge(opts: argparse.Namespace) -> Any | None:
    if opts.judge_obj is not None:
        return opts.judge_obj
    spec = opts.judge_model or opts.model
    if str(spec).lower() in ("none", "match", ""):
        return None
    from rlm_research.tools.chat_models import build_chat_model

    return build_chat_model(
        opts.model_obj if spec == opts.model and opts.model_obj else spec,
        base_url=opts.judge_base_url or opts.base_url,
        temperature=0.0,
        max_tokens=16,
    )


def run_frames(opts: argparse.Namespace, log: Callable[[str], None] = print) -> list[dict]:
    rows = load_frames(opts.dataset_file)
    if opts.start:
        rows = rows[opts.start :]
    if opts.limit is not None:
        rows = rows[: opts.limit]
    out = Path(opts.out) if opts.out else None
    done_rows, done = load_done(out)
    judge = build_judge(opts)
    results: list[dict[str, Any]] = []
    for r in rows:
        key = (r["index"], opts.mode, opts.system, opts.model)
        if key in done:
            continue
        question, gold = str(r.get("Prompt", "")), str(r.get("Answer", ""))
        rec: dict[str, Any] = {
            "index": r["index"],
            "mode": opts.mode,
            "system": opts.system,
            "model": opts.model,
            "question": question,
            "gold": gold,
            "reasoning_types": r.get("reasoning_types"),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        sources = None
        if opts.mode == "oracle":
            sources, missing = load_articles(r["links"], opts.articles_dir)
            rec["articles"], rec["missing_articles"] = len(sources), missing
        log(f"[{time.strftime('%H:%M:%S')}] FRAMES #{r['index']} {opts.mode} {opts.system} ...")
        t0 = time.perf_counter()
        if opts.mode == "oracle" and not sources:
            rec.update(answer="", stop_reason="no articles", usage={}, error="no articles")
        else:
            try:
                rec.update(run_system(opts.system, question, sources, opts))
            except Exception as exc:
                rec.update(answer="", stop_reason="error", usage={})
                rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
                rec["traceback"] = traceback.format_exc()[-2000:]
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        correct, grader, reply = grade(question, gold, rec.get("answer") or "", judge)
        rec.update(correct=correct, grader=grader, judge_reply=reply)
        results.append(rec)
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as f:
                f.write(json.dumps(rec, default=str) + "\n")
        log(f"    {'OK ' if correct else 'NO '} ({grader}) {str(rec.get('answer'))[:80]!r}")
    wanted = {r["index"] for r in rows}
    return [
        r
        for r in done_rows
        if r["index"] in wanted
        and (r["mode"], r["system"], r["model"]) == (opts.mode, opts.system, opts.model)
    ] + results


def summary(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no rows"
    n = len(rows)
    ok = sum(1 for r in rows if r.get("correct"))
    by_llm = sum(1 for r in rows if r.get("grader") == "llm")
    errors = sum(1 for r in rows if r.get("error"))
    secs = sum(r.get("seconds", 0) for r in rows) / n
    return (
        f"FRAMES {rows[0]['mode']} / {rows[0]['system']} / {rows[0]['model']}: "
        f"{ok}/{n} correct ({ok / n:.1%}); graded by LLM judge {by_llm}, by match {n - by_llm}; "
        f"errors {errors}; mean {secs:.0f} s a question"
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.frames", description=__doc__.split("\n")[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("closed", "oracle"), default="closed")
    p.add_argument("--system", choices=("rlm", "plain"), default="rlm")
    p.add_argument("--model", default="local")
    p.add_argument("--base-url", default=None)
    p.add_argument("--judge-model", default=None, help="spec, or `none` (default: --model)")
    p.add_argument("--judge-base-url", default=None)
    p.add_argument("--dataset-file", default=None, help="local test.tsv / .csv / .jsonl")
    p.add_argument("--articles-dir", default="frames_articles", help="oracle mode: article files")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--out", default=None, help="results JSONL (resumable)")
    p.add_argument("--max-turns", type=int, default=12)
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--window", type=int, default=32768, help="plain: the model's window, tokens")
    p.add_argument("--data-dir", default=None)


def main(argv: list[str] | None = None, model_obj: Any = None, judge_obj: Any = None) -> int:
    opts = build_parser().parse_args(argv)
    return run_main(opts, model_obj=model_obj, judge_obj=judge_obj)


def run_main(opts: argparse.Namespace, model_obj: Any = None, judge_obj: Any = None) -> int:
    opts.model_obj, opts.judge_obj = model_obj, judge_obj
    tmp = None
    if opts.data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="rlm-frames-")
        opts.data_dir = tmp.name
    try:
        rows = run_frames(opts, log=lambda s: print(s, file=sys.stderr, flush=True))
    except DatasetUnavailable as exc:
        print(f"FRAMES data unavailable: {exc}", file=sys.stderr)
        return 2
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
