"""`rlm-research show RUN --html [--open]`: the viewer written from the checkpoints, for a run
in any state, its path printed; `--open` hands it to the web browser."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path

import pytest
from rlm_research.cli.main import app
from typer.testing import CliRunner

from tests.support.cli_process import cli_env
from tests.support.viewer_runs import ANSWERS, tree_run


def show(*args: str, env: dict[str, str]):
    return CliRunner().invoke(app, ["show", *args], env=env)


@pytest.mark.timeout(120)
def test_show_html_writes_the_viewer_and_open_opens_it(make_settings, tmp_path, monkeypatch):
    tree_run(make_settings, run_id="shown")
    db = Path(make_settings().data_dir) / "runs.sqlite"
    env = cli_env(tmp_path)
    page = db.parent / "reports" / "shown.html"

    out = show("shown", "--db", str(db), "--html", env=env)
    assert out.exit_code == 0, out.output
    assert f"Viewer: {page}" in " ".join(out.output.split())
    assert page.is_file() and ANSWERS["0.9"] in page.read_text()

    page.unlink()
    out = show("shown", "--db", str(db), "--html", "--json", env=env)
    assert json.loads(out.stdout)["html"] == str(page) and page.is_file()

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    out = show("shown", "--db", str(db), "--open", env=env)
    assert out.exit_code == 0 and opened == [page.resolve().as_uri()]


def test_show_html_of_a_failed_run_has_the_resume_command(make_settings, tmp_path):
    with pytest.raises(Exception, match="went away"):
        tree_run(make_settings, run_id="broken", stop_at=2)
    db = Path(make_settings().data_dir) / "runs.sqlite"
    out = show("broken", "--db", str(db), "--html", env=cli_env(tmp_path))
    assert out.exit_code == 0, out.output
    text = (db.parent / "reports" / "broken.html").read_text()
    assert f"rlm-research resume broken --db {db}" in text
