"""The graph, as the design card draws it:

    START -> generate_code -> execute ------------> observe -> generate_code ... -> finalize -> END
                                 ^   | (code called sub_lm)
                              spawn_subgraph  (this same compiled graph, depth + 1)

`observe` routes to `execute` itself only when the stuck advice's reading code runs in the
model's place (docs/guards.md).

`graph` is compiled without a checkpointer: `langgraph dev` injects its own, and the CLI and the
Python API compile `builder` with a SQLite saver. Nested runs call this module-level `graph` and
inherit the parent's checkpointer through the config.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from rlm_research.graph.settings import Settings
from rlm_research.graph.state import RLMInput, RLMOutput, RLMState
from rlm_research.nodes.execute import execute
from rlm_research.nodes.finalize import finalize
from rlm_research.nodes.generate_code import generate_code
from rlm_research.nodes.observe import observe
from rlm_research.nodes.spawn_subgraph import spawn_subgraph


def build_graph() -> StateGraph:
    builder = StateGraph(
        RLMState, context_schema=Settings, input_schema=RLMInput, output_schema=RLMOutput
    )
    builder.add_node("generate_code", generate_code)
    builder.add_node("execute", execute)
    builder.add_node("spawn_subgraph", spawn_subgraph)
    builder.add_node("observe", observe)
    builder.add_node("finalize", finalize)
    builder.add_edge(START, "generate_code")
    builder.add_edge("spawn_subgraph", "execute")
    builder.add_edge("finalize", END)
    return builder


builder = build_graph()
# The default `max_parallel` (16) as the thread pool size, for callers such as `langgraph dev`
# that bring their own config; `graph.api` sets it from the run's settings.
graph = builder.compile().with_config(max_concurrency=16 + 2)
graph.name = "rlm"
