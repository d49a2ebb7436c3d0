"""`rlm-research-mcp`: deep research over long documents as an MCP server (official `mcp` SDK).

    rlm-research-mcp                            # stdio: what an IDE or chat app starts
    rlm-research-mcp --http --port 8765         # streamable HTTP at http://127.0.0.1:8765/mcp,
                                                # behind a bearer token (docs/security.md)
    rlm-research-mcp --config my.yaml --db ~/research/runs.sqlite

Tools:
- `deep_research(question, sources=[], options={})`: run a Recursive Language Model over the
  sources; returns the answer, the run id, a short usage summary and the stop reason. Progress
  notifications (turns, cells, sub-calls at every depth) go to the client while it works.
- `resume_research(run_id)`: continue a run that was cancelled, failed or crashed.
- `list_runs()`: runs in the database, newest first.
- `get_report(run_id)`: the run's markdown report (written first if it is missing), and its HTML
  viewer as an embedded resource.

Configured like the CLI (`graph.config`): `--config FILE` (or `$RLM_CONFIG`, `./rlm-research.yaml`,
the user config), then `RLM_*` environment variables. API keys come from the environment
(`RLM_API_KEY`, `OPENAI_API_KEY`, ...), never from a call. Clients are not trusted
(docs/security.md, `client_policy`): a call's `options` only shape the run within the operator's
caps, and its sources are read only under the allowed roots.

Bad input (a missing source, a bad option, an unreachable model) is a tool error result
(`isError`) with one line; nothing is started. A run the client cancels stops where it is and
stays resumable: finished steps and finished model calls are in the SQLite checkpoints.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field
from rlm_research.graph import run_index
from rlm_research.graph.config import ConfigError, load_config
from rlm_research.graph.stores import (
    DatabaseUnavailable,
    check_db_url,
    check_reachable,
    locate,
)
from rlm_research.mcp_server.client_policy import CLIENT_KEYS
from rlm_research.mcp_server.failures import ToolFailure, failures_as_results
from rlm_research.mcp_server.http_auth import HttpSetupError, serve_http
from rlm_research.mcp_server.options import RESUME_KEYS, split_options
from rlm_research.mcp_server.research import Research
from rlm_research.mcp_server.run_threads import in_thread
from rlm_research.mcp_server.summaries import describe_event

from rlm_research import __version__

# The tools and the command line live here; what they do is in `mcp_server.research` (see the
# package docstring for the other modules). Names callers import from here stay importable.
__all__ = [
    "RESUME_KEYS",
    "Research",
    "ToolFailure",
    "build_server",
    "describe_event",
    "main",
    "parse_args",
    "split_options",
]

log = logging.getLogger("rlm_research.mcp")

SERVER_NAME = "rlm-research"


# -- the MCP server --------------------------------------------------------------------------------
INSTRUCTIONS = """\
Deep research over long documents with a Recursive Language Model: the sources live in a Python \
REPL as `context`; the model writes code to read them and hands pieces to sub-calls. Runs are \
checkpointed: a cancelled or failed run continues with resume_research. Call list_runs to find \
runs and get_report for a run's full markdown report."""

OPTIONS_HELP = (
    "Settings that shape this run, up to the server's caps: "
    + ", ".join(CLIENT_KEYS)
    + "; 'model' and 'sub_model' only if the server's operator allows the model. "
    "e.g. {'max_depth': 2, 'max_turns': 20, 'web': true}."
)


def build_server(research: Research, log_level: str = "WARNING") -> MCPServer:
    """The MCP server with its four tools, bound to `research`."""
    mcp = MCPServer(
        SERVER_NAME, instructions=INSTRUCTIONS, version=__version__, log_level=log_level
    )

    @mcp.tool(annotations=ToolAnnotations(open_world_hint=True))
    @failures_as_results
    async def deep_research(
        question: Annotated[str, Field(description="The question to answer.")],
        ctx: Context,
        sources: Annotated[
            list[str] | None,
            Field(
                description="Files, folders (read recursively), PDFs or http(s):// URLs to "
                "research, as paths on the server's machine (absolute paths are safest). "
                "'web://' turns on web research. Empty: the question alone."
            ),
        ] = None,
        options: Annotated[dict[str, Any] | None, Field(description=OPTIONS_HELP)] = None,
    ) -> CallToolResult:
        """Answer a question over long sources with a Recursive Language Model.

        Returns the answer, the run id, a usage summary (model calls and tokens per model,
        sub-calls) and the stop reason. Sends progress notifications while it works. If the
        call is cancelled or fails, the run stays saved: resume_research(run_id) continues it.
        """
        return await research.deep_research(ctx, question, sources or [], options or {})

    @mcp.tool(annotations=ToolAnnotations(open_world_hint=True))
    @failures_as_results
    async def resume_research(
        run_id: Annotated[str, Field(description="The run to continue (see list_runs).")],
        ctx: Context,
        options: Annotated[
            dict[str, Any] | None,
            Field(
                description="Only model and sub_model may change on resume (to a model the "
                "server's operator allows); the run keeps its other settings."
            ),
        ] = None,
    ) -> CallToolResult:
        """Continue a cancelled, failed or crashed run from its last checkpoint.

        Model calls that already finished, at any depth, are not made again. A finished run is
        not run again: its answer is returned.
        """
        return await research.resume_research(ctx, run_id, options)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
    @failures_as_results
    async def list_runs(
        limit: Annotated[int, Field(description="At most this many runs.", ge=1)] = 50,
        status: Annotated[
            str | None,
            Field(description="Only runs with this status: " + ", ".join(run_index.STATUSES)),
        ] = None,
    ) -> CallToolResult:
        """List research runs, newest first: id, status, question, answer, usage, start time."""
        return await in_thread(research.list_runs, limit, status)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    @failures_as_results
    async def get_report(
        run_id: Annotated[str, Field(description="The run (see list_runs).")],
    ) -> CallToolResult:
        """The markdown report of a run: question, answer, status, sources, usage per model,
        the call tree and each root turn's code and output. Written first if missing. The
        run's self-contained HTML viewer comes with it as an embedded text/html resource."""
        return await in_thread(research.get_report, run_id)

    return mcp


# -- command line ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rlm-research-mcp",
        description=(
            "MCP server for rlm-research: deep_research, resume_research, list_runs and "
            "get_report tools over a Recursive Language Model with durable runs. Serves stdio "
            "by default. Configured like the rlm-research CLI: --config FILE (else $RLM_CONFIG, "
            "./rlm-research.yaml, ~/.config/rlm-research/config.yaml), then RLM_* environment "
            "variables (RLM_MODEL, RLM_BASE_URL, RLM_MAX_DEPTH, RLM_DATA_DIR, ...). API keys "
            "come from RLM_API_KEY or the provider's variable (OPENAI_API_KEY, ...)."
        ),
    )
    parser.add_argument(
        "--http",
        action="store_true",
        help="Serve streamable HTTP (at http://HOST:PORT/mcp) instead of stdio.",
    )
    parser.add_argument("--version", action="version", version=f"rlm-research-mcp {__version__}")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765).")
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="A host name clients use to reach --http besides loopback and --host (the Host "
        "and Origin check refuses others); repeat for several. Every request needs the bearer "
        "token: $RLM_MCP_TOKEN, or one printed at start (only for a loopback --host).",
    )
    parser.add_argument("--config", type=Path, help="A YAML config file (as the CLI's --config).")
    parser.add_argument(
        "--db",
        help="The run database: a SQLite file (its folder also holds blobs/ and reports/), or a "
        "postgresql://user@host/dbname URL that several servers share (docs/deployment.md). "
        "Default: db_url from the config or RLM_DB_URL, else <data_dir>/runs.sqlite.",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Server log level, on stderr (default WARNING).",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.config is not None:  # read again on every call: pin it to where we started
        args.config = args.config.expanduser().absolute()
    try:
        loaded = load_config({}, config_file=args.config)
    except ConfigError as e:
        print(f"rlm-research-mcp: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        settings, db = locate(loaded.settings, None if args.db is None else check_db_url(args.db))
    except ValueError as e:
        print(f"rlm-research-mcp: error: --db: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        check_reachable(db)
    except DatabaseUnavailable as e:
        print(f"rlm-research-mcp: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    if isinstance(db, Path):
        db = db.resolve()
    research = Research(db, config_file=args.config, data_dir=Path(settings.data_dir).resolve())
    server = build_server(research, args.log_level)
    log.setLevel(args.log_level)
    try:
        if args.http:
            serve_http(
                server,
                host=args.host,
                port=args.port,
                allowed_hosts=args.allowed_host,
                log_level=args.log_level,
            )
        else:
            server.run("stdio")
    except HttpSetupError as e:
        print(f"rlm-research-mcp: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass
    finally:
        research.shutdown()


if __name__ == "__main__":
    main()
