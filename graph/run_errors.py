"""The error a run's lifecycle raises before anything runs (no such run, a model that cannot
be reached, settings that do not validate): one line, for every front end to show as it is."""

from __future__ import annotations


class RunSetupError(ValueError):
    """Nothing was run or changed. `usage` marks the caller's mistake (the CLI exits 2 for it,
    1 for the rest)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage
