"""Progress of a run, from the events `graph.api.stream` yields.

`LiveProgress` draws a rich live view on a terminal: the root's turn and what it is doing, a
depth tree of the levels running below it, sub-calls in flight, model calls, tokens and elapsed
time. `PlainProgress` writes one line per step to stderr, for logs and pipes. Both keep the same
counters (`Tracker`), so the CLI can print a summary either way.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


@dataclass
class DepthStats:
    running: int = 0  # levels at this depth that started and have not finished
    started: int = 0
    finished: int = 0
    failed: int = 0
    max_turn: int = 0


@dataclass
class Tracker:
    """Counters built from progress events; no output of its own."""

    started_at: float = field(default_factory=time.monotonic)
    root_turn: int = 0
    root_activity: str = "starting"
    last_observation: str = ""
    in_flight: int = 0  # sub-calls started, not yet done
    sub_calls_done: int = 0
    sub_calls_failed: int = 0
    model_calls: int = 0
    input_tokens: int | None = None  # only known when events carry usage
    output_tokens: int | None = None
    depths: dict[int, DepthStats] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)  # level id -> depth, while running

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def _level(self, event: dict[str, Any]) -> None:
        level, depth = event.get("level"), int(event.get("depth", 0))
        if level and level not in self.levels:
            self.levels[level] = depth
            stats = self.depths.setdefault(depth, DepthStats())
            stats.running += 1
            stats.started += 1

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        depth = int(event.get("depth", 0))
        usage = event.get("usage")
        if isinstance(usage, dict):
            self._add_usage(usage)
        if kind in ("turn", "direct", "cell", "sub_calls"):
            self._level(event)
        stats = self.depths.setdefault(depth, DepthStats())
        if kind == "turn":  # calls and tokens are counted from the "model_call" events
            stats.max_turn = max(stats.max_turn, int(event.get("turn", 0)))
            if depth == 0:
                self.root_turn = int(event.get("turn", 0))
                self.root_activity = "asking the model"
        elif kind == "cell" and depth == 0:
            self.root_activity = f"running cell {event.get('cell')}"
        elif kind == "sub_calls" and depth == 0:
            self.root_activity = f"waiting on {event.get('count')} sub-call(s)"
        elif kind == "child_start":
            self.in_flight += 1
        elif kind in ("child_done", "child_failed"):
            self.in_flight = max(0, self.in_flight - 1)
            self.sub_calls_done += 1
            if kind == "child_failed":
                self.sub_calls_failed += 1
                stats.failed += 1
        elif kind == "observation" and depth == 0:
            self.last_observation = str(event.get("text", ""))
            self.root_activity = "reading the output"
        elif kind == "finished":
            level = event.get("level")
            if level in self.levels:
                del self.levels[level]
                stats.running = max(0, stats.running - 1)
            stats.finished += 1
            if depth == 0:
                self.root_activity = f"finished ({event.get('stop_reason')})"

    def _add_usage(self, usage: dict[str, Any]) -> None:
        models = usage.get("models", {}) if "models" in usage else {"_": usage}
        for counts in models.values():
            self.model_calls += int(counts.get("calls", 0))
            self.input_tokens = (self.input_tokens or 0) + int(counts.get("input_tokens", 0))
            self.output_tokens = (self.output_tokens or 0) + int(counts.get("output_tokens", 0))

    def tokens_text(self) -> str:
        if self.input_tokens is None:
            return "n/a"
        return f"{self.input_tokens:,} in / {self.output_tokens:,} out"


def fmt_seconds(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class PlainProgress:
    """One line per step on stderr: `[00:12] depth 0 · turn 3`."""

    def __init__(self, run_id: str, stream: TextIO | None = None) -> None:
        self.run_id = run_id
        self.stream = stream or sys.stderr
        self.tracker = Tracker()

    def __enter__(self) -> PlainProgress:
        self._line(f"run {self.run_id} started")
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def note(self, text: str) -> None:
        self._line(text)

    def _line(self, text: str) -> None:
        try:
            print(f"[{fmt_seconds(self.tracker.elapsed)}] {text}", file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed pipe must not end the run
            pass

    def handle(self, event: dict[str, Any]) -> None:
        t = self.tracker
        t.handle(event)
        kind, depth = event.get("kind"), event.get("depth", 0)
        if kind == "turn":
            self._line(f"depth {depth} · turn {event.get('turn')}")
        elif kind == "direct":
            self._line(f"depth {depth} · direct answer")
        elif kind == "sub_calls":
            self._line(f"depth {depth} · {event.get('count')} sub-call(s) started")
        elif kind == "child_failed":
            self._line(f"depth {depth} · sub-call {event.get('id')} failed: {event.get('error')}")
        elif kind == "child_done" and t.in_flight == 0:
            self._line(f"depth {depth} · sub-calls done ({t.sub_calls_done} so far)")
        elif kind == "finished" and depth == 0:
            self._line(f"finished: {event.get('stop_reason')} · {t.model_calls} model call(s)")


class LiveProgress:
    """A rich live view on stderr, redrawn four times a second; it disappears when the run ends."""

    def __init__(self, run_id: str, model: str = "", console: Console | None = None) -> None:
        self.run_id = run_id
        self.model = model
        self.tracker = Tracker()
        self.notice = ""
        self.console = console or Console(stderr=True)
        self.live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def handle(self, event: dict[str, Any]) -> None:
        self.tracker.handle(event)

    def note(self, text: str) -> None:
        self.notice = text

    def render(self) -> Group:
        t = self.tracker
        head = Text.assemble(
            ("rlm-research ", "bold"),
            (self.run_id, "cyan"),
            (f"  {self.model}" if self.model else "", "dim"),
            ("  elapsed ", "dim"),
            (fmt_seconds(t.elapsed), "bold"),
        )
        tree = Table.grid(padding=(0, 1))
        tree.add_column(style="dim", no_wrap=True)
        tree.add_column()
        tree.add_row("depth 0", Text(f"turn {t.root_turn} · {t.root_activity}", style="green"))
        for depth in sorted(d for d in t.depths if d > 0):
            s = t.depths[depth]
            line = f"{'  ' * (depth - 1)}└ {s.running} running · {s.finished} done"
            if s.failed:
                line += f" · {s.failed} failed"
            if s.max_turn:
                line += f" · up to turn {s.max_turn}"
            tree.add_row(f"depth {depth}", line)
        stats = Text.assemble(
            ("sub-calls in flight ", "dim"),
            (str(t.in_flight), "bold"),
            ("  done ", "dim"),
            (str(t.sub_calls_done), "bold"),
            ("  model calls ", "dim"),
            (str(t.model_calls), "bold"),
            ("  tokens ", "dim"),
            (t.tokens_text(), "bold"),
        )
        parts: list[Any] = [head, tree, stats]
        if t.last_observation:
            skip = ("Output:", "Variables:", "Next ```")
            shown = t.last_observation.splitlines()
            lines = [ln for ln in shown if ln.strip() and not ln.startswith(skip)][:3]
            preview = "\n".join(ln[:120] for ln in lines)
            parts.append(Text(preview, style="dim italic"))
        if self.notice:
            parts.append(Text(self.notice, style="bold yellow"))
        return Group(*parts)


def make_progress(run_id: str, *, model: str = "", live: bool, quiet: bool = False):
    """The live view on a terminal, plain lines otherwise, or nothing at all when quiet."""
    if quiet:
        return NullProgress()
    if live:
        return LiveProgress(run_id, model)
    return PlainProgress(run_id)


class NullProgress:
    def __init__(self) -> None:
        self.tracker = Tracker()

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def handle(self, event: dict[str, Any]) -> None:
        self.tracker.handle(event)

    def note(self, text: str) -> None:
        pass
