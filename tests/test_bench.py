"""Fast tests of the benchmark: generators (determinism, gold), scorers, the quality runner, the
FRAMES runner (fixture in the dataset's schema, scripted model and judge) and the CLI."""

from __future__ import annotations

import csv
import json
import re
import sys
import types
from pathlib import Path

import pytest
from rlm_research.bench import frames, quality
from rlm_research.bench.tasks import (
    FAMILIES,
    count_score,
    exact_match,
    exact_match_excluding,
    make,
    pair_f1,
    parse_size,
)
from typer.testing import CliRunner

from tests.support.scripted_models import RuleModel
from tests.support.stub_openai import RuleResponder, StubOpenAI

SMALL = 30_000

# --------------------------------------------------------------------------------------------
# Generators


@pytest.mark.parametrize("family", FAMILIES)
def test_generator_is_deterministic_and_sized(family):
    a, b, c = make(family, SMALL, 7), make(family, SMALL, 7), make(family, SMALL, 8)
    assert (a.question, a.context, a.gold) == (b.question, b.context, b.gold)
    assert a.context != c.context
    assert abs(len(a.context) - SMALL) < 1_000
    assert a.score(str(a.gold) if not isinstance(a.gold, list) else json.dumps(a.gold)) == 1.0
    assert a.score("") == 0.0
    assert a.id == f"{family}@30K#s7"


def test_needle_gold_once_and_distractors_present():
    t = make("needle", SMALL, 3)
    assert t.context.count(t.gold) == 1
    assert all(d in t.context for d in t.meta["distractors"])
    assert t.score(f"The code is {t.gold}.") == 1.0
    assert t.score(t.meta["distractors"][0]) == 0.0
    assert t.score(f"{t.gold} or {t.meta['distractors'][-1]}") == 0.0


def test_count_explicit_gold_counts_and_drifts():
    t = make("count_explicit", 200_000, 1)
    label = re.search(r"label '(\w+)'", t.question).group(1)
    lines = t.context.splitlines()
    assert t.gold == sum(1 for ln in lines if f"label: {label} " in ln)
    half = len(lines) // 2
    first = sum(1 for ln in lines[:half] if f"label: {label} " in ln)
    second = t.gold - first
    assert abs(first - second) > t.gold // 4  # a prefix misleads
    assert t.score(str(t.gold)) == 1.0 and t.score(str(t.gold + 2)) == 0.75**2


def test_count_implied_writes_no_label():
    t = make("count_implied", SMALL, 2)
    assert not re.search(r"\b(positive|negative|favourable)\b", t.context, re.I)
    product = re.search(r"reviews of the (.+?) are", t.question).group(1)
    assert sum(product in ln for ln in t.context.splitlines()) == t.meta["target_reviews"]
    assert 0 <= t.gold <= t.meta["target_reviews"]


def test_pairs_gold_matches_records():
    t = make("pairs", SMALL, 4)
    seen: dict[tuple[str, str], list[str]] = {}
    for ln in t.context.splitlines():
        m = re.match(r"(P-\d+): .*lives in (\w+), born (.+)\.$", ln)
        seen.setdefault((m.group(2), m.group(3)), []).append(m.group(1))
    pairs = sorted(sorted(v) for v in seen.values() if len(v) == 2)
    assert all(len(v) <= 2 for v in seen.values())
    assert pairs == t.gold


def test_multihop_gold_follows_the_chain():
    t = make("multihop", SMALL, 5)
    arts = {a.split(" ==")[0].strip("= \n"): a for a in t.context.split("\n== ")}
    person = re.search(
        r"where (?:the headquarters of )?(.+?)(?:'s employer are| grew up)\?", t.question
    )
    art = arts[person.group(1)]
    if t.meta["hops"] == 3:
        emp = re.search(r"has worked for (.+?)\. ", art).group(1)
        town = re.search(r"headquarters are in (\w+)\.", arts[emp]).group(1)
    else:
        town = re.search(r"grew up in (\w+)\.", art).group(1)
    assert re.search(r"founded in (\d+)", arts[town]).group(1) == t.gold


def test_scorers():
    assert exact_match("  '4417' ", "4417") == 1.0
    assert exact_match("The answer is 4417.", "4417") == 1.0
    assert exact_match("44170", "4417") == 0.0
    assert exact_match_excluding("4417 (or 5000)", "4417", ["5000"]) == 0.0
    assert count_score("There are 1,204 lines.", 1204) == 1.0
    assert count_score("no idea", 3) == 0.0
    assert count_score("41", 42) == 0.75
    gold = {frozenset(("P-1", "P-2")), frozenset(("P-3", "P-4"))}
    assert pair_f1("(P-2, P-1), (P-3, P-4)", gold, r"P-\d+") == 1.0
    assert pair_f1("(P-1, P-2)", gold, r"P-\d+") == pytest.approx(2 / 3)
    assert pair_f1("none", gold, r"P-\d+") == 0.0
    assert parse_size("100K") == 100_000 and parse_size("10M") == 10_000_000


# --------------------------------------------------------------------------------------------
# Quality runner


def solver(messages) -> str:
    """A scripted 'model' that answers the needle task by code and everything else with 0."""
    last = str(messages[-1].content)
    if "Question:" in last and "access code" in last:
        vault = re.search(r"access code for the (.+?) vault", last).group(1)
        return (
            "```python\nimport re\n"
            f"m = re.search(r'the access code for the {vault} vault is (\\d+)', context)\n"
            "FINAL(m.group(1))\n```"
        )
    return "0"


def test_quality_runner_scores_and_resumes(tmp_path, capsys):
    model = RuleModel(fn=solver)
    out = tmp_path / "q.jsonl"
    argv = ["--tasks", "needle", "--sizes", "20000", "--seeds", "1", "2"]
    argv += ["--systems", "rlm", "plain", "--out", str(out), "--data-dir", str(tmp_path / "d")]
    rows = quality.main(argv, model_obj=model)
    assert len(rows) == 4
    by = {(r["task"], r["system"]): r for r in rows}
    assert by[("needle@20K#s1", "rlm")]["score"] == 1.0
    assert by[("needle@20K#s1", "rlm")]["turns"] == 1
    assert by[("needle@20K#s1", "plain")]["failure"] == "wrong"
    assert by[("needle@20K#s1", "plain")]["calls"] == 1
    assert (tmp_path / "q.jsonl.traj").is_dir()
    calls = len(model.calls)
    rows2 = quality.main(argv, model_obj=model)  # resumed: nothing runs again
    assert len(model.calls) == calls
    assert len(rows2) == 4 and len(out.read_text().splitlines()) == 4
    assert "| needle | 20K | rlm | 2 | 1.00" in capsys.readouterr().out


def test_plain_truncates_to_the_window(tmp_path):
    seen = {}

    def fn(messages):
        seen["chars"] = len(str(messages[-1].content))
        return "0"

    argv = ["--tasks", "count_explicit", "--sizes", "50000", "--systems", "plain"]
    argv += ["--window", "2000", "--plain-max-tokens", "100"]
    rows = quality.main(argv, model_obj=RuleModel(fn=fn))
    assert rows[0]["truncated"] is True
    assert 4 * 1500 < seen["chars"] < 4 * 2000  # ~4 chars a token without a tokenizer


def test_failure_reasons():
    base = {"score": 0.0, "answer": "x", "stop_reason": "answered", "turns": 4}
    assert quality.failure_reason({**base, "answer": ""}) == "no answer"
    assert quality.failure_reason({**base, "error_turns": 2}) == "code errors"
    assert quality.failure_reason({**base, "stop_reason": "budget:time"}) == "timeout"
    assert quality.failure_reason({**base, "stop_reason": "budget:turns"}) == "budget"
    assert quality.failure_reason({**base, "error": "boom"}) == "error"
    assert quality.failure_reason({**base, "score": 1.0}) == ""


# --------------------------------------------------------------------------------------------
# FRAMES

FIXTURE = [
    {
        "Unnamed: 0": "0",
        "Prompt": "Which river flows through the town where Ada Quill was born?",
        "Answer": "The Ostra",
        "wikipedia_link_1": "https://en.wikipedia.org/wiki/Ada_Quill",
        "wikipedia_link_2": "https://en.wikipedia.org/wiki/Velbridge",
        "wikipedia_link_11+": "",
        "reasoning_types": "Multiple constraints",
        "wiki_links": "['https://en.wikipedia.org/wiki/Ada_Quill', "
        "'https://en.wikipedia.org/wiki/Velbridge']",
    },
    {
        "Unnamed: 0": "1",
        "Prompt": "How many years after Velbridge was founded was Ada Quill born?",
        "Answer": "150",
        "wikipedia_link_1": "https://en.wikipedia.org/wiki/Ada_Quill",
        "wikipedia_link_2": "https://en.wikipedia.org/wiki/Velbridge",
        "wikipedia_link_11+": "",
        "reasoning_types": "Numerical reasoning",
        "wiki_links": "['https://en.wikipedia.org/wiki/Ada_Quill', "
        "'https://en.wikipedia.org/wiki/Velbridge']",
    },
    {
        "Unnamed: 0": "2",
        "Prompt": "Who wrote the novel Grey Lanterns?",
        "Answer": "Mora Feld",
        "wikipedia_link_1": "https://en.wikipedia.org/wiki/Grey_Lanterns",
        "wikipedia_link_11+": "",
        "reasoning_types": "Tabular reasoning",
        "wiki_links": "['https://en.wikipedia.org/wiki/Grey_Lanterns']",
    },
]


@pytest.fixture
def frames_files(tmp_path):
    tsv = tmp_path / "test.tsv"
    cols = list(FIXTURE[0].keys())
    with tsv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, delimiter="\t", extrasaction="ignore")
        w.writeheader()
        for row in FIXTURE:
            w.writerow({c: row.get(c, "") for c in cols})
    arts = tmp_path / "articles"
    arts.mkdir()
    (arts / "Ada_Quill.txt").write_text("Ada Quill (born 1893) is a poet born in Velbridge.")
    (arts / "Velbridge.txt").write_text("Velbridge is a town on the Ostra river, founded in 1743.")
    return tsv, arts


def frames_model(messages) -> str:
    """Root: answers by code in oracle mode (reads the sources), from 'memory' in closed mode."""
    last = str(messages[-1].content)
    if "Question:" not in last:
        return "I do not know"
    if "river" in last and "velbridge" in last:
        code = "FINAL(re.search(r'on the (\\w+) river', velbridge).group(1))"
        return f"```python\nimport re\n{code}\n```"
    if "river" in last:
        return '```python\nFINAL("the Ostra")\n```'
    if "How many years" in last:
        return '```python\nFINAL("about 150 years")\n```'
    return '```python\nFINAL("I could not find it")\n```'


def judge_fn(messages) -> str:
    text = str(messages[-1].content)
    gold = re.search(r"Ground-truth answer: (.*)", text).group(1)
    pred = re.search(r"Predicted answer: (.*)", text).group(1)
    if "150" in gold:
        return "maybe"  # no verdict: the normalised match decides
    return "TRUE" if gold.lower().replace("the ", "") in pred.lower() else "FALSE"


def test_frames_loads_the_schema(frames_files):
    tsv, _ = frames_files
    rows = frames.load_frames(tsv)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[0]["links"][1] == "https://en.wikipedia.org/wiki/Velbridge"
    assert frames.parse_links({"wikipedia_link_1": "https://x/wiki/A", "wiki_links": ""}) == [
        "https://x/wiki/A"
    ]


def test_frames_closed_and_oracle_with_judge_and_resume(frames_files, tmp_path, capsys):
    tsv, arts = frames_files
    model, judge = RuleModel(fn=frames_model), RuleModel(fn=judge_fn)
    out = tmp_path / "frames.jsonl"
    common = ["--dataset-file", str(tsv), "--out", str(out), "--data-dir", str(tmp_path / "d")]
    assert frames.main(["--mode", "closed", *common], model_obj=model, judge_obj=judge) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["index"], r["correct"], r["grader"]) for r in rows] == [
        (0, True, "llm"),
        (1, True, "match"),  # the judge gave no verdict; "about 150 years" matches "150"
        (2, False, "llm"),
    ]
    assert "2/3 correct" in capsys.readouterr().out

    n_model, n_judge = len(model.calls), len(judge.calls)
    assert frames.main(["--mode", "closed", *common], model_obj=model, judge_obj=judge) == 0
    assert (len(model.calls), len(judge.calls)) == (n_model, n_judge)  # resumed: nothing ran

    oracle = ["--mode", "oracle", "--articles-dir", str(arts), *common]
    assert frames.main(oracle, model_obj=model, judge_obj=judge) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines() if '"oracle"' in x]
    assert rows[0]["articles"] == 2 and rows[0]["answer"] == "Ostra" and rows[0]["correct"]
    assert rows[2]["stop_reason"] == "no articles" and not rows[2]["correct"]
    assert rows[2]["missing_articles"] == ["https://en.wikipedia.org/wiki/Grey_Lanterns"]


def test_frames_without_network_says_so(monkeypatch, capsys):
    fake = types.ModuleType("datasets")

    def load_dataset(*a, **k):
        raise ConnectionError("Couldn't reach 'google/frames-benchmark' on the Hub")

    fake.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", fake)
    assert frames.main(["--mode", "closed", "--limit", "2"]) == 2
    assert "could not load google/frames-benchmark" in capsys.readouterr().err


def test_normalized_match():
    assert frames.normalized_match("It is the Ostra river.", "The Ostra")
    assert frames.normalized_match("1,204", "1204")
    assert not frames.normalized_match("Ostravia", "Ostra")
    assert not frames.normalized_match("", "x")
    assert frames.parse_verdict("true.") is True and frames.parse_verdict("FALSE") is False
    assert frames.parse_verdict("unsure") is None


def test_cli_frames_through_a_stub_server(frames_files, tmp_path):
    from rlm_research.bench.cli import app

    tsv, _ = frames_files
    rules = RuleResponder(
        [(r"Ground-truth answer: Mora Feld", "TRUE"), (r"Ground-truth answer", "FALSE")],
        default='```python\nFINAL("Mora Feld")\n```',
    )
    out = tmp_path / "cli.jsonl"
    with StubOpenAI(rules) as stub:
        res = CliRunner().invoke(
            app,
            ["frames", "--mode", "closed", "--limit", "3", "--model", "openai:stub",
             "--base-url", stub.base_url, "--dataset-file", str(tsv), "--out", str(out)],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "1/3 correct" in res.output
    assert len(Path(out).read_text().splitlines()) == 3


# --------------------------------------------------------------------------------------------
# The official implementation's harness


def test_rename_shim_renames_max_completion_tokens():
    import httpx
    from rlm_research.bench.official import RenameShim, rename_body

    assert rename_body({"max_completion_tokens": 7}) == {"max_tokens": 7}
    assert rename_body({"max_tokens": 3, "max_completion_tokens": 7}) == {"max_tokens": 3}
    assert rename_body({}, default_max=50) == {"max_tokens": 50}
    with StubOpenAI(RuleResponder([], default="hi")) as stub, RenameShim(stub.base_url) as shim:
        body = {"model": "stub", "messages": [{"role": "user", "content": "x"}]}
        r = httpx.post(
            shim.base_url + "/chat/completions", json={**body, "max_completion_tokens": 9}
        )
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hi"
        assert stub.calls[-1].get("max_tokens") == 9
        assert "max_completion_tokens" not in stub.calls[-1]


def test_official_system_through_the_shim(tmp_path):
    import argparse

    from rlm_research.bench import official

    from tests.support.stub_openai import ScriptedResponder

    try:
        official.check_installed()
    except RuntimeError:
        pytest.skip(f"rlms not installed ({official.INSTALL})")
    task = make("needle", 20_000, 1)
    code = "```repl\nprint(len(context))\n```"
    responder = ScriptedResponder([code], default=f"```repl\nFINAL({task.gold})\n```")
    with StubOpenAI(responder) as stub:
        opts = argparse.Namespace(
            model="openai:stub", base_url=stub.base_url, max_turns=4, timeout=60, out=None
        )
        out = official.run_official(task, opts)
        assert all("max_completion_tokens" not in c for c in stub.calls)
    assert task.gold in out["answer"]
    assert out["trajectory"][0]["code"] == ["print(len(context))"]
    assert out["usage"]["models"]["official:stub"]["calls"] >= 2


# What llama-cpp-python's server (verbose) writes around two completions: the second one reused
# the KV prefix of the first and evaluated only the new tokens.
SERVER_LOG = """\
llama_model_loader: loaded meta data with 29 key-value pairs and 338 tensors from qwen.gguf
llama_context: n_ctx_per_seq (32768) < n_ctx_train (32768) -- the full capacity of the model
INFO:     Uvicorn running on http://127.0.0.1:40123 (Press CTRL+C to quit)
llama_perf_context_print:        load time =    2345.67 ms
llama_perf_context_print: prompt eval time =    2345.10 ms /  1874 tokens (    1.25 ms per token,   799.11 tokens per second)
llama_perf_context_print:        eval time =    1520.33 ms /    63 runs   (   24.13 ms per token,    41.44 tokens per second)
llama_perf_context_print:       total time =    3901.42 ms /  1937 tokens
llama_perf_context_print:    graphs reused =         61
INFO:     127.0.0.1:51234 - "POST /v1/chat/completions HTTP/1.1" 200 OK
Llama.generate: 1936 prefix-match hit, remaining 215 prompt tokens to eval
llama_perf_context_print:        load time =    2345.67 ms
llama_perf_context_print: prompt eval time =     301.88 ms /   215 tokens (    1.40 ms per token,   712.21 tokens per second)
llama_perf_context_print:        eval time =     990.02 ms /    40 runs   (   24.75 ms per token,    40.40 tokens per second)
llama_perf_context_print:       total time =    1310.77 ms /   255 tokens
INFO:     127.0.0.1:51234 - "POST /v1/chat/completions HTTP/1.1" 200 OK
"""  # noqa: E501


def test_evaluated_tokens_sums_the_prompt_eval_lines():
    from rlm_research.bench.official import add_evaluated, evaluated_tokens

    assert evaluated_tokens(SERVER_LOG) == 1874 + 215
    assert evaluated_tokens("llama_print_timings: prompt eval time = 5.0 ms / 7 tokens") == 7
    assert evaluated_tokens("INFO: nothing ran\n") == 0
    usage = {"models": {"official:local": {"calls": 2, "input_tokens": 4087}}}
    add_evaluated(usage, "official:local", SERVER_LOG)
    assert usage["models"]["official:local"]["input_tokens_evaluated"] == 2089
    empty: dict = {}  # the driver timed out: its usage is lost, the server's count is not
    add_evaluated(empty, "official:local", SERVER_LOG)
    slot = {"input_tokens_evaluated": 2089, "calls": 2, "output_tokens": 63 + 40}
    assert empty == {"models": {"official:local": slot}}
    untouched: dict = {}  # no completion, no timing line: unknown, not 0
    add_evaluated(untouched, "official:local", "INFO: started\n")
    assert untouched == {}


def test_llama_server_log_has_a_section_per_task(tmp_path, monkeypatch):
    from rlm_research.bench import official

    started = []

    class FakeProc:
        returncode = None

        def __init__(self, cmd, stdout, **kw):
            started.append(cmd)
            stdout.write(SERVER_LOG.encode())  # what the server writes to its log
            stdout.flush()

        def poll(self):
            return self.returncode

        def terminate(self):
            self.returncode = 0

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(official.subprocess, "Popen", FakeProc)
    monkeypatch.setattr(
        official.httpx, "get", lambda *a, **k: types.SimpleNamespace(status_code=200)
    )
    log = tmp_path / "q.jsonl.llama_server.log"
    for task in ("needle@100K#s1", "needle@100K#s2"):
        with official.LlamaServer("m.gguf", log=log, section=task) as server:
            pass
        text = server.log_text()
        assert text.count("==== ") == 1 and f"==== {task} " in text
        assert official.evaluated_tokens(text) == 2089  # this task's completions only
    assert official.evaluated_tokens(log.read_text()) == 2 * 2089
    assert started[0][-2:] == ["--verbose", "true"]


def test_table_shows_evaluated_tokens_and_old_rows_still_print():
    base = {"family": "needle", "size": 100_000, "system": "rlm", "score": 1.0, "seconds": 5,
            "calls": 2, "completion_tokens": 40, "failure": "", "answer": "42"}  # fmt: skip
    old = {**base, "task": "needle@100K#s1", "seed": 1, "prompt_tokens": 1000}  # no such field
    new = {**base, "task": "needle@100K#s2", "seed": 2, "prompt_tokens": 3000,
           "prompt_tokens_evaluated": 1200}  # fmt: skip
    unknown = {**base, "task": "needle@100K#s3", "seed": 3, "prompt_tokens": 500,
               "prompt_tokens_evaluated": None}  # fmt: skip
    out = quality.table([old, new, unknown])
    assert "| prompt tok | eval tok | completion tok |" in out
    assert "| needle@100K#s1 | rlm | 1.00 | 5 | 2 | 0 | 1,000 | - | 40 |" in out
    assert "| needle@100K#s2 | rlm | 1.00 | 5 | 2 | 0 | 3,000 | 1,200 | 40 |" in out
    assert "| needle@100K#s3 | rlm | 1.00 | 5 | 2 | 0 | 500 | - | 40 |" in out
    assert "| mean prompt tok | mean eval tok | failures |" in out
    assert "| needle | 100K | rlm | 3 | 1.00 | 5 | 2.0 | 1,500 | 1,200 (1/3) | - |" in out
    assert "| 1,000 | - | - |" in quality.table([old]).splitlines()[-1]


def test_usage_totals_knows_evaluated_tokens_only_when_every_model_reports_them():
    local = {"calls": 2, "input_tokens": 3000, "output_tokens": 40, "input_tokens_evaluated": 1200}
    hosted = {"calls": 1, "input_tokens": 10, "output_tokens": 2}
    assert quality.usage_totals({"models": {"l": local}})["prompt_tokens_evaluated"] == 1200
    both = {"models": {"l": local, "l2": local}}
    assert quality.usage_totals(both)["prompt_tokens_evaluated"] == 2400
    mixed = quality.usage_totals({"models": {"l": local, "h": hosted}})
    assert mixed["prompt_tokens_evaluated"] is None and mixed["prompt_tokens"] == 3010
    assert quality.usage_totals({})["prompt_tokens_evaluated"] is None


def test_truncation_keeps_a_text_that_fits():
    text = "word " * 20_000  # 100K chars, ~25K tokens at 4 chars a token
    out, cut = quality.truncate_to_tokens(text, 30_000, lambda s: len(s) // 4 + 1)
    assert out == text and not cut
    out, cut = quality.truncate_to_tokens(text, 10_000, lambda s: len(s) // 4 + 1)
    assert cut and 39_000 < len(out) <= 40_000


# --------------------------------------------------------------------------------------------
# bench.side_by_side


@pytest.mark.timeout(120)
def test_side_by_side_prints_numbers(capsys):
    """Tiny sizes, one repeat; numbers for ours always, for official only where it is installed
    (not in CI: the script then says how to install it and still measures ours)."""
    from rlm_research.bench import side_by_side

    argv = ["--repeats", "1", "--mb", "1", "--turns", "3", "--batch", "2", "--delay", "0.05"]
    side_by_side.main(argv)
    out = capsys.readouterr().out
    cells = {ln[:34].strip(): ln[34:].split() for ln in out.splitlines() if ln[:1].isalpha()}
    rows = ["run s, 3 turns", "ms per turn, from in-call s (*)", "batch of 2: run s"]
    rows += ["batch of 2: server span s", "tree RSS peak", "added (peak - before)"]
    installed = "# official: rlms" in out
    assert installed or "# official: not installed" in out
    for row in rows:
        ours, official = cells[row][:2]
        float(ours)
        if installed:
            float(official)
    assert 0.05 <= float(cells["batch of 2: server span s"][0]) < 1.0
    assert float(cells["tree RSS peak"][0]) > float(cells["tree RSS before the run"][0])
    assert "# failed" not in out
