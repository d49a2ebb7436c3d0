"""rlm-research: Recursive Language Models as a durable LangGraph workflow.

The design's top-level folders (`graph/`, `nodes/`, `tools/`, `cli/`, `mcp_server/`, `bench/`)
install as subpackages of this one name (setuptools `package-dir`), so an installed copy never
puts a top-level `graph` or `tools` into site-packages. In a source checkout those folders sit
beside this one, and `__path__` is extended to find them, so the same imports work untouched.
"""

from __future__ import annotations

from importlib import metadata as _metadata
from pathlib import Path as _Path

_here = _Path(__file__).resolve().parent
if not (_here / "graph").is_dir():  # a source checkout, not an installed wheel
    __path__.append(str(_here.parent))  # noqa: F821 (a package's __path__)

try:
    __version__ = _metadata.version("rlm-research")
except _metadata.PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
