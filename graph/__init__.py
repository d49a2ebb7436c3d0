"""rlm-research: Recursive Language Models as a LangGraph graph.

from rlm_research.graph import graph, run, Settings
"""

from rlm_research.graph.api import RunResult, aresume, arun, astream, resume, run, stream
from rlm_research.graph.builder import builder, graph
from rlm_research.graph.settings import Settings

__all__ = [
    "RunResult",
    "Settings",
    "aresume",
    "arun",
    "astream",
    "builder",
    "graph",
    "resume",
    "run",
    "stream",
]
