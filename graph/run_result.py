"""What a finished (or stopped) run hands back to every front end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunResult:
    run_id: str
    answer: str  # the answer when `status` is "answered", else ""
    stop_reason: str
    usage: dict[str, Any]
    call_tree: dict[str, Any]
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    status: str = ""  # answered | no_answer | interrupted (see graph.outcome)
    error: str | None = None  # without an answer: why, in one line
    unaccepted: str = ""  # the final text that was not taken as an answer (code, a note, ...)
    report: str | None = None  # the markdown report's path, once written
    trajectory_file: str | None = None  # the JSONL trajectory's path, once written

    @property
    def answered(self) -> bool:
        return self.status == "answered"
