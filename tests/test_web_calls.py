"""`web_search` / `fetch_url` are made by the host, counted, and journalled for a re-run cell."""

from __future__ import annotations

import rlm_research.nodes.host_calls
from rlm_research.graph import run
from rlm_research.tools import repl_host
from rlm_research.tools.web_search import WebError

from tests.support.scripted_models import RuleModel, py, script


def fake_web(calls: list):
    def call_web(fn, args, settings):
        calls.append((fn, args))
        if args.get("url") == "http://bad.example":
            raise WebError("fetch_url: http://bad.example is unreachable")
        if fn == "web_search":
            return [{"title": "T", "url": "http://x.example", "snippet": "S " + args["query"]}]
        return "page text"

    return call_web


def test_web_tools_run_in_the_host_and_errors_reach_the_code(make_settings, monkeypatch):
    calls: list = []
    monkeypatch.setattr(rlm_research.nodes.host_calls, "call_web", fake_web(calls))
    code = (
        "hits = web_search('rlm paper', max_results=3)\n"
        "page = fetch_url(hits[0]['url'])\n"
        "try:\n    fetch_url('http://bad.example')\nexcept WebError as e:\n    err = str(e)\n"
        "FINAL(hits[0]['snippet'] + '|' + page + '|' + err)"
    )
    result = run("q", "ctx", settings=make_settings(model=script(py(code)), web=True))
    assert result.answer == "S rlm paper|page text|fetch_url: http://bad.example is unreachable"
    assert result.usage["web_calls"] == 3 and len(calls) == 3


def test_web_calls_have_a_budget_and_are_absent_without_web(make_settings, monkeypatch):
    calls: list = []
    monkeypatch.setattr(rlm_research.nodes.host_calls, "call_web", fake_web(calls))
    code = "out = []\nfor i in range(3):\n    try:\n        out.append(len(web_search(str(i))))\n"
    code += "    except WebError as e:\n        out.append(str(e))\nFINAL(repr(out))"
    settings = make_settings(model=script(py(code)), web=True, max_web_calls=2)
    result = run("q", "ctx", settings=settings)
    assert result.answer.startswith("[1, 1, 'web_search refused: the budget of 2 web calls")
    no_web = run("q", "ctx", settings=make_settings(model=script(py("web_search('x')"), "gave up")))
    assert "NameError" in no_web.trajectory[0]["observation"]


def test_a_cell_run_again_does_not_search_again(make_settings, monkeypatch):
    calls: list = []
    monkeypatch.setattr(rlm_research.nodes.host_calls, "call_web", fake_web(calls))

    def child(msgs):
        # The worker is lost while it waits for this answer: the cell must run again.
        for level in list(repl_host._LIVE):
            repl_host.stop_worker(level)
        return "child answer"

    code = "hits = web_search('once')\nr = sub_lm('p')\nFINAL(hits[0]['snippet'] + ' ' + r)"
    settings = make_settings(model=script(py(code)), sub_model=RuleModel(fn=child), web=True)
    result = run("q", "ctx", settings=settings)
    assert result.answer == "S once child answer"
    assert len(calls) == 1
