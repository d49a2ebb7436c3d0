"""`rlm-research-mcp`: the research tool as a Model Context Protocol server (see `server`)."""
