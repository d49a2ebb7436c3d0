"""rlm-research: Recursive Language Models as a LangGraph graph.

from rlm_research.graph import graph, run, Settings

The names below load on first use. Eager imports here made `graph.settings` pull in the whole
graph, so a node importing its settings first closed a cycle (node -> graph -> builder -> node),
and light imports (`graph.run_index`, `--version`) paid for LangGraph. The uncompiled builder
is `rlm_research.graph.builder.builder` (the name `builder` here is its module).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlm_research.graph.api import RunResult, aresume, arun, astream, resume, run, stream
    from rlm_research.graph.builder import graph
    from rlm_research.graph.settings import Settings

_HOME = {
    "RunResult": "api",
    "aresume": "api",
    "arun": "api",
    "astream": "api",
    "resume": "api",
    "run": "api",
    "stream": "api",
    "graph": "builder",
    "Settings": "settings",
}

__all__ = [
    "RunResult",
    "Settings",
    "aresume",
    "arun",
    "astream",
    "graph",
    "resume",
    "run",
    "stream",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
