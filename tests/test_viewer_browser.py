"""The run viewer in a real browser (headless Chromium, driven by Playwright): the page a user
opens from disk shows every level of the call tree with its answer, opens a level to its turns,
draws one timeline bar per model call, makes no network request and logs no error.

Needs Debian's `chromium` (scripts/install-system-deps.sh) and the `playwright` package (the dev
extra; its own browser download is never used). Screenshots go to the test's tmp folder, and to
$RLM_TEST_ARTIFACTS when set.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rlm_research.report.html_viewer import write_viewer
from rlm_research.report.markdown import write_report

from tests.support.viewer_runs import ANSWERS, HOSTILE, MODEL_CALLS, QUESTION, tree_run

CHROMIUM = os.environ.get("RLM_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)
if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (install Debian's chromium: scripts/install-system-deps.sh)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Watched:
    """A page with every request, console error and dialog it caused recorded."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def open(self, path: Path) -> Any:
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        return self.page

    def assert_clean(self) -> None:
        assert self.requests == [self.url], "the page fetched something"
        assert self.errors == [] and self.dialogs == []


def save_screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    folder = os.environ.get("RLM_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / name)
    return shot


@pytest.mark.timeout(180)
def test_viewer_shows_the_tree_turns_and_timeline(browser, make_settings, tmp_path):
    result = tree_run(make_settings)
    data = Path(make_settings().data_dir)
    md, _ = write_report(result, data_dir=data, question=QUESTION, status="answered")
    watched = Watched(browser)
    page = watched.open(md.with_suffix(".html"))

    assert page.locator("#run-answer").inner_text() == ANSWERS["0"]
    # Every level of the tree, with its answer (the hostile one shown as text, not run).
    page.click("#expand-all")
    heads = page.locator(".node > .node-head")
    assert heads.count() == len(ANSWERS)
    for path, answer in ANSWERS.items():
        node = page.locator(f'.node[data-path="{path}"] > .node-head')
        assert node.is_visible(), path
        assert node.locator(".node-answer").inner_text() == answer, path
    assert HOSTILE in page.locator('.node[data-path="0.5"] > .node-body').inner_text()

    # Expanding a level shows its turns: code, and what the model saw next.
    page.click("#collapse-all")
    child = page.locator('.node[data-path="0.1"]')
    assert not child.locator(":scope > .node-body").is_visible()
    child.locator(":scope > .node-head").click()
    turns = child.locator(":scope > .node-body .turn")
    assert turns.count() == 1 and turns.first.is_visible()
    assert "sub_lm('say done')" in turns.first.locator("pre.code").inner_text()
    assert "3 done" in turns.first.locator("pre.obs").inner_text()
    assert turns.first.locator("pre.code .tk-rlm").count() >= 1  # highlighted
    assert page.locator('.node[data-path="0.1.1"]').is_visible()  # its sub-call, collapsed

    # The timeline: one bar per model call, one row per level; the batch side by side.
    assert page.locator(".bar.model").count() == MODEL_CALLS
    assert page.locator(".tl-row").count() == len(ANSWERS)
    lefts = [
        page.locator(f'.tl-row[data-path="0.{i}"] .bar.model').first.bounding_box()["x"]
        for i in range(2, 10)
    ]
    assert max(lefts) - min(lefts) < 0.2 * page.locator(".tl-track").first.bounding_box()["width"]

    save_screenshot(page, tmp_path, "viewer-tree-run.png")
    watched.assert_clean()


@pytest.mark.timeout(180)
def test_viewer_of_a_failed_run_shows_where_it_stopped(browser, make_settings, tmp_path):
    with pytest.raises(Exception, match="went away"):
        tree_run(make_settings, run_id="failed-run", stop_at=3)
    page_file = write_viewer("failed-run", db_path=Path(make_settings().data_dir) / "runs.sqlite")
    watched = Watched(browser)
    page = watched.open(page_file)
    assert "failed" in page.locator("h1 .badge").inner_text()
    stopped = page.locator("#stopped-at").inner_text()
    assert "Resume with: rlm-research resume failed-run" in stopped
    page.click("#expand-all")
    assert page.locator(".node").count() == len(ANSWERS)  # every sub-call ran before it failed
    assert page.locator(".bar.inflight").count() == 1  # the root's turn that never came back
    save_screenshot(page, tmp_path, "viewer-failed-run.png")
    watched.assert_clean()


@pytest.mark.timeout(600)
def test_a_500_sub_call_run_renders_in_reasonable_time(browser, tmp_path):
    from rlm_research.bench.viewer_render import make_big_run

    result = make_big_run(tmp_path / "data", sub_calls=500)
    md, _ = write_report(result, data_dir=tmp_path / "data", question="q", status="answered")
    page_file = md.with_suffix(".html")
    assert page_file.stat().st_size < 5_000_000
    watched = Watched(browser)
    started = time.perf_counter()
    page = watched.open(page_file)
    page.locator(".bar.model").first.wait_for()
    seconds = time.perf_counter() - started
    assert seconds < 30, f"the page took {seconds:.1f} s to render"  # a generous bound
    assert page.locator(".node").count() == 501
    assert page.locator(".bar.model").count() == 502
    watched.assert_clean()
