"""The record of a run for people: the markdown report and the JSONL trajectory (and the HTML
viewer beside them). Below the front ends: the run lifecycle writes these, and the CLI and the
MCP server only show where they are."""
