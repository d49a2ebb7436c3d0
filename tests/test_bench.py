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
from typer.testing import CliRunner

from bench import frames, quality
from bench.tasks import (
    FAMILIES,
    count_score,
    exact_match,
    exact_match_excluding,
    make,
    pair_f1,
    parse_size,
)
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
    from bench.cli import app

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

    from bench.official import RenameShim, rename_body

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

    from bench import official
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


def test_truncation_keeps_a_text_that_fits():
    text = "word " * 20_000  # 100K chars, ~25K tokens at 4 chars a token
    out, cut = quality.truncate_to_tokens(text, 30_000, lambda s: len(s) // 4 + 1)
    assert out == text and not cut
    out, cut = quality.truncate_to_tokens(text, 10_000, lambda s: len(s) // 4 + 1)
    assert cut and 39_000 < len(out) <= 40_000
