"""`rlm-research-mcp`: the research tool as a Model Context Protocol server.

- `server`: the four tools (deep_research, resume_research, list_runs, get_report), the command
  line and `main`, the entry point.
- `research`: what the tools do, over one run database.
- `run_threads`: runs driven by graph.api.astream on the event loop, progress, cancellation.
- `options`: checking a call's `options` and run ids.
- `client_policy`: the operator's rules for clients (models, caps, roots, URLs).
- `http_auth`: `--http` behind a bearer token and the Host/Origin check.
- `reports`: a run's markdown report, after it ends or on demand.
- `summaries`: progress lines, usage summaries and previews for the client.
- `failures`: `ToolFailure` and how it becomes an `isError` result.
"""
