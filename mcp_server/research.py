"""What the four tools do, over one run database (`db`, with blobs/ and reports/ beside it):
settings for a run, the checks made before anything starts, and running it to its answer."""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent
from rlm_research.graph import run_index
from rlm_research.graph.config import ConfigError, Loaded, load_config
from rlm_research.graph.run_errors import RunSetupError
from rlm_research.graph.run_lifecycle import check_models, resume_settings
from rlm_research.graph.run_result import RunResult
from rlm_research.graph.settings import Settings
from rlm_research.graph.stored_report import report_path
from rlm_research.graph.stores import describe, is_postgres, locate
from rlm_research.mcp_server.client_policy import ClientPolicy, client_roots
from rlm_research.mcp_server.failures import ToolFailure
from rlm_research.mcp_server.options import RESUME_KEYS, check_run_id, flag_to_option, split_options
from rlm_research.mcp_server.run_threads import (
    SHUTDOWN_GRACE,
    ActiveRuns,
    follow_run,
    in_thread,
)
from rlm_research.mcp_server.summaries import (
    iso_time,
    preview,
    usage_line,
    usage_summary,
)
from rlm_research.mcp_server.viewer import viewer_resource

log = logging.getLogger("rlm_research.mcp")


class Research:
    """What the tools do, over one run database (`db`, with blobs/ and reports/ beside it)."""

    def __init__(
        self, db: Path | str, config_file: Path | None = None, data_dir: Path | None = None
    ) -> None:
        self.db = db  # a SQLite file or a postgresql:// URL (graph.stores)
        # Reports (and, with PostgreSQL, the blob cache) live here: beside a SQLite file.
        self.data_dir = data_dir if data_dir is not None else Path(db).parent
        self.config_file = config_file
        self._runs = ActiveRuns(db)

    # -- settings ----------------------------------------------------------------------------
    def load(self, flags: dict[str, Any] | None = None) -> Loaded:
        try:
            return load_config(flags or {}, config_file=self.config_file)
        except ConfigError as e:
            raise ToolFailure(flag_to_option(str(e), list(flags or {}))) from None

    def local_store(self) -> Path:
        """The run database's file here, beside blobs/ and reports/ (PostgreSQL: the local data
        folder's, which holds reports and the blob cache): refused as a client source."""
        return Path(self.db) if not is_postgres(self.db) else self.data_dir / "runs.sqlite"

    def _here(self, settings: Settings, **extra: Any) -> Settings:
        """The database, blobs/ and reports/ share one folder, as graph.api and the CLI do."""
        return locate(dataclasses.replace(settings, **extra), self.db, data_dir=self.data_dir)[0]

    def run_settings(self, options: dict[str, Any] | None) -> tuple[Settings, Loaded]:
        """A new run's settings: config file < RLM_* environment < the call's `options`."""
        policy = self.client_policy()
        flags, extra = split_options(policy.check_options(options))
        loaded = self.load(flags)
        return policy.confine(self._here(loaded.settings, **extra)), loaded

    def client_policy(self) -> ClientPolicy:
        """The operator's rules for clients (docs/security.md), from today's config."""
        loaded = self.load()
        return ClientPolicy.from_config(loaded.values, loaded.settings)

    @staticmethod
    def check_models(settings: Settings) -> None:
        try:
            check_models(settings)
        except RunSetupError as e:
            raise ToolFailure(preview(str(e), 400)) from None

    def _check_not_running_elsewhere(self, row: dict[str, Any] | None, run_id: str) -> None:
        """Refuse a run that another live process is running (get_run reads a row left
        `running` by a dead process as interrupted; ours, no longer active here, is stale)."""
        if row and row.get("status") == "running" and row.get("pid") != os.getpid():
            raise ToolFailure(
                f"run {run_id} is running in another process (pid {row.get('pid')} on "
                f"{row.get('host')}); wait for it or stop it first"
            )

    def shutdown(self, timeout: float = SHUTDOWN_GRACE) -> None:
        """Ask every run still going to stop after its current step; wait up to `timeout`."""
        self._runs.shutdown(timeout)

    # -- tools -------------------------------------------------------------------------------
    async def deep_research(
        self, ctx: Context, question: str, sources: list[str], options: dict[str, Any]
    ) -> CallToolResult:
        question = (question or "").strip()
        if not question:
            raise ToolFailure("the question is empty")
        policy = await in_thread(self.client_policy)  # the trust boundary: docs/security.md
        policy.check_input(question, sources)
        settings, loaded = await in_thread(self.run_settings, options)
        for spec in sources:
            if spec.strip() == "-":
                raise ToolFailure("source '-' (stdin) is not available over MCP; give a path")

        from rlm_research.tools.sources import SourceError, load_sources

        try:
            loaded_sources = await in_thread(
                load_sources,
                list(sources),
                max_bytes=loaded.max_source_bytes,
                url_timeout=loaded.url_timeout,
                policy=policy.source_policy(self.local_store(), await client_roots(ctx)),
            )
        except SourceError as e:
            raise ToolFailure(str(e)) from None
        if loaded_sources.web:  # a `web://` source turns web research on for this run
            settings = dataclasses.replace(settings, web=True)
        await in_thread(self.check_models, settings)

        from rlm_research.graph.api import astream

        run_id = uuid.uuid4().hex[:12]
        events = astream(
            question,
            loaded_sources.context(),
            settings=settings,
            run_id=run_id,
            db_path=self.db,
            sources=loaded_sources.sizes(),
        )
        return await self._execute(ctx, run_id, events)

    async def resume_research(
        self, ctx: Context, run_id: str, options: dict[str, Any] | None
    ) -> CallToolResult:
        from rlm_research.graph.api import astream

        run_id = check_run_id(run_id)
        policy = await in_thread(self.client_policy)  # the trust boundary: docs/security.md
        flags, _ = split_options(policy.check_options(options), allowed=RESUME_KEYS)
        if not await in_thread(run_index.has_checkpoints, self.db, run_id):
            raise ToolFailure(f"no run {run_id!r} to resume in {describe(self.db)}")
        await self._runs.wait_until_stopped(run_id)
        row = await in_thread(run_index.get_run, self.db, run_id)
        self._check_not_running_elsewhere(row, run_id)
        fallback = (await in_thread(self.load, {})).settings
        try:
            settings, _, _ = await in_thread(
                resume_settings, run_id, db_path=self.db, overrides=flags, fallback=fallback
            )
        except RunSetupError as e:
            message = str(e).replace("give a model", "give options={'model': ...}")
            raise ToolFailure(flag_to_option(message, list(flags))) from None
        settings = policy.confine(self._here(settings))
        await in_thread(self.check_models, settings)
        # The settings chosen above, given whole: the lifecycle records what differs.
        events = astream(None, settings=settings, run_id=run_id, db_path=self.db)
        return await self._execute(ctx, run_id, events)

    def list_runs(self, limit: int, status: str | None) -> CallToolResult:
        if status is not None and status not in run_index.STATUSES:
            raise ToolFailure(f"bad status {status!r}: use one of {', '.join(run_index.STATUSES)}")
        rows = run_index.list_runs(self.db, limit=max(1, limit), status=status)
        runs = [
            {
                "run_id": r["run_id"],
                "status": r["status"],
                "question": r.get("question"),
                "answer": r.get("answer"),
                "stop_reason": r.get("stop_reason"),
                "model": r.get("model"),
                "started": iso_time(r.get("started")),
                "updated": iso_time(r.get("updated")),
                "usage": usage_summary(r.get("usage")) if r.get("usage") else None,
                "error": r.get("error"),
                "report": r.get("report"),
            }
            for r in rows
        ]
        if runs:
            lines = [
                f"{r['run_id']}  {r['status']:<11}  {r['started'] or '?'}  "
                f"{preview(r['question'], 60)!r} -> {preview(r['answer'], 40) or '-'}"
                for r in runs
            ]
            text = f"{len(runs)} run(s) in {describe(self.db)}, newest first:\n" + "\n".join(lines)
        else:
            text = f"No runs in {describe(self.db)}."
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content={"db": describe(self.db), "runs": runs},
        )

    def get_report(self, run_id: str) -> CallToolResult:
        run_id = check_run_id(run_id)
        row = run_index.get_run(self.db, run_id)
        if row is None:
            raise ToolFailure(f"no run {run_id!r} in {describe(self.db)}")
        path = report_path(self.db, run_id, row, self.data_dir)
        text = path.read_text(encoding="utf-8")
        page = viewer_resource(
            self.db, self.data_dir, run_id, row, path
        )  # the HTML viewer, beside the markdown
        return CallToolResult(
            content=[TextContent(type="text", text=text), page],
            structured_content={"run_id": run_id, "status": row["status"], "path": str(path)},
        )

    # -- running -----------------------------------------------------------------------------
    async def _execute(self, ctx: Context, run_id: str, events: Any) -> CallToolResult:
        """Drive the run on this event loop (`graph.api.astream`) and present its result. A
        cancel of this call cancels the run: it reads `interrupted` and stays resumable."""
        self._runs.claim(run_id)
        try:
            result = await follow_run(events, ctx)
        except RunSetupError as e:
            raise ToolFailure(str(e)) from None
        except Exception as error:  # noqa: BLE001 - a model or graph error: resumable
            log.info("run %s failed: %s", run_id, run_index.one_line(error))
            raise ToolFailure(
                f"run {run_id} failed: {run_index.one_line(error)}. Finished steps are saved: "
                f"resume_research(run_id={run_id!r}) continues it"
            ) from None
        finally:
            self._runs.release(run_id)
        return present_result(result)


def present_result(result: RunResult) -> CallToolResult:
    """The tool's reply: the answer (only a real one) and a footer, or why there is none."""
    summary = usage_summary(result.usage)
    run_id = result.run_id
    structured = {
        "run_id": run_id,
        "status": result.status,
        "answer": result.answer,
        "stop_reason": result.stop_reason,
        "usage": summary,
        "report": result.report,
    }
    footer = (
        f"run_id: {run_id} · status: {result.status} · stop reason: {result.stop_reason}\n"
        f"usage: {usage_line(summary)}\n"
        f"report: get_report(run_id={run_id!r}) ({result.report})"
    )
    if not result.answered:
        text = f"No answer: {result.error}.\n\n{footer}"
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content=structured,
            is_error=True,
        )
    text = f"{result.answer.strip()}\n\n---\n{footer}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=structured
    )
