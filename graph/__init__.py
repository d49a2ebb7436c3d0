"""rlm-research: Recursive Language Models as a LangGraph graph.

from graph import graph, run, Settings
"""

from graph.api import RunResult, resume, run, stream
from graph.builder import builder, graph
from graph.settings import Settings

__all__ = ["RunResult", "Settings", "builder", "graph", "resume", "run", "stream"]
