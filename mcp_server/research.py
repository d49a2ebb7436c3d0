"""What the four tools do, over one run database (`db`, with blobs/ and reports/ beside it):
settings for a run, the checks made before anything starts, and running it to its answer."""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent
from rlm_research.graph import run_index
from rlm_research.graph.config import ConfigError, Loaded, load_config, settings_from_stored
from rlm_research.graph.settings import Settings
from rlm_research.mcp_server.failures import ToolFailure
from rlm_research.mcp_server.options import RESUME_KEYS, check_run_id, flag_to_option, split_options
from rlm_research.mcp_server.reports import report_path, write_run_report
from rlm_research.mcp_server.run_threads import (
    SHUTDOWN_GRACE,
    ActiveRuns,
    RunThread,
    follow_run,
    in_thread,
    settle_after_cancel,
)
from rlm_research.mcp_server.summaries import (
    iso_time,
    model_label,
    preview,
    usage_line,
    usage_summary,
)
from rlm_research.mcp_server.viewer import viewer_resource

log = logging.getLogger("rlm_research.mcp")


class Research:
    """What the tools do, over one run database (`db`, with blobs/ and reports/ beside it)."""

    def __init__(self, db: Path, config_file: Path | None = None) -> None:
        self.db = db
        self.config_file = config_file
        self._runs = ActiveRuns()

    # -- settings ----------------------------------------------------------------------------
    def load(self, flags: dict[str, Any] | None = None) -> Loaded:
        try:
            return load_config(flags or {}, config_file=self.config_file)
        except ConfigError as e:
            raise ToolFailure(flag_to_option(str(e), list(flags or {}))) from None

    def _here(self, settings: Settings, **extra: Any) -> Settings:
        """The database, blobs/ and reports/ share one folder, as graph.api and the CLI do."""
        return dataclasses.replace(settings, data_dir=str(self.db.parent), **extra)

    def run_settings(self, options: dict[str, Any] | None) -> tuple[Settings, Loaded]:
        """A new run's settings: config file < RLM_* environment < the call's `options`."""
        flags, extra = split_options(options)
        loaded = self.load(flags)
        return self._here(loaded.settings, **extra), loaded

    @staticmethod
    def check_models(settings: Settings) -> None:
        from rlm_research.tools.chat_models import ModelConfigError, check_models_reachable

        try:
            check_models_reachable(settings.model, settings.sub_model, base_url=settings.base_url)
        except ModelConfigError as e:
            raise ToolFailure(preview(str(e), 400)) from None
        except Exception as e:  # noqa: BLE001 - e.g. a local weights loader's own error
            raise ToolFailure(
                f"model {model_label(settings.model)}: {run_index.one_line(e)}"
            ) from None

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
            )
        except SourceError as e:
            raise ToolFailure(str(e)) from None
        if loaded_sources.web:  # a `web://` source turns web research on for this run
            settings = dataclasses.replace(settings, web=True)
        await in_thread(self.check_models, settings)

        run_id = uuid.uuid4().hex[:12]
        sizes = loaded_sources.sizes()
        await in_thread(
            run_index.record_start,
            self.db,
            run_id,
            question=question,
            sources=sizes,
            settings=settings,
        )
        return await self._execute(
            ctx,
            run_id=run_id,
            question=question,
            context=loaded_sources.context(),
            settings=settings,
            report_question=question,
            sources=sizes,
        )

    async def resume_research(
        self, ctx: Context, run_id: str, options: dict[str, Any] | None
    ) -> CallToolResult:
        run_id = check_run_id(run_id)
        flags, _ = split_options(options, allowed=RESUME_KEYS)
        if not await in_thread(run_index.has_checkpoints, self.db, run_id):
            raise ToolFailure(f"no run {run_id!r} to resume in {self.db}")
        await self._runs.wait_until_stopped(run_id, ctx)
        row = await in_thread(run_index.get_run, self.db, run_id)
        self._check_not_running_elsewhere(row, run_id)
        stored = (row or {}).get("settings")
        if stored:
            if stored.get("model") is None and not flags.get("model"):
                raise ToolFailure(
                    f"run {run_id} was started with a model object from Python; "
                    "give options={'model': ...}"
                )
            try:
                settings = settings_from_stored(stored, flags)
            except ConfigError as e:
                raise ToolFailure(flag_to_option(str(e), list(flags))) from None
        else:  # started before the run index existed, or elsewhere: today's config
            settings = (await in_thread(self.load, flags)).settings
        settings = self._here(settings)
        await in_thread(self.check_models, settings)
        row = row or {}
        return await self._execute(
            ctx,
            run_id=run_id,
            question=None,
            context=None,
            settings=settings,
            report_question=row.get("question") or "",
            sources=row.get("sources"),
        )

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
            text = f"{len(runs)} run(s) in {self.db}, newest first:\n" + "\n".join(lines)
        else:
            text = f"No runs in {self.db}."
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content={"db": str(self.db), "runs": runs},
        )

    def get_report(self, run_id: str) -> CallToolResult:
        run_id = check_run_id(run_id)
        row = run_index.get_run(self.db, run_id)
        if row is None:
            raise ToolFailure(f"no run {run_id!r} in {self.db}")
        path = report_path(self.db, run_id, row)
        text = path.read_text(encoding="utf-8")
        page = viewer_resource(self.db, run_id, row, path)  # the HTML viewer, beside the markdown
        return CallToolResult(
            content=[TextContent(type="text", text=text), page],
            structured_content={"run_id": run_id, "status": row["status"], "path": str(path)},
        )

    # -- running -----------------------------------------------------------------------------
    async def _execute(
        self,
        ctx: Context,
        *,
        run_id: str,
        question: str | None,
        context: Any,
        settings: Settings,
        report_question: str,
        sources: list[dict[str, Any]] | None,
    ) -> CallToolResult:
        from rlm_research.graph.api import stream

        worker = RunThread(
            run_id,
            lambda: stream(question, context, settings=settings, run_id=run_id, db_path=self.db),
            on_exit=lambda: self._runs.release(run_id),
        )
        self._runs.claim(run_id, worker)
        worker.start()
        try:
            result, error = await follow_run(worker, ctx)
        except BaseException:
            # The client cancelled (or went away), or forwarding broke: stop after the current
            # step (see RunThread) and leave the run resumable.
            worker.stop.set()
            with anyio.CancelScope(shield=True):
                await settle_after_cancel(worker, self.db)
            raise
        if error is not None:
            log.info("run %s failed: %s", run_id, run_index.one_line(error))
            raise ToolFailure(
                f"run {run_id} failed: {run_index.one_line(error)}. Finished steps are saved: "
                f"resume_research(run_id={run_id!r}) continues it"
            )
        if result is None:  # stopped without a result: only a shutdown does this
            raise ToolFailure(f"run {run_id} was stopped; resume_research continues it")

        row, md_path = await in_thread(
            write_run_report, self.db, result, report_question, sources, settings
        )
        status = row.get("status") or "answered"
        summary = usage_summary(result.usage)
        structured = {
            "run_id": run_id,
            "status": status,
            "answer": result.answer,
            "stop_reason": result.stop_reason,
            "usage": summary,
            "report": str(md_path),
        }
        footer = (
            f"run_id: {run_id} · status: {status} · stop reason: {result.stop_reason}\n"
            f"usage: {usage_line(summary)}\n"
            f"report: get_report(run_id={run_id!r}) ({md_path})"
        )
        if status != "answered":
            why = row.get("error") or f"the run ended without an answer ({result.stop_reason})"
            text = f"No answer: {why}.\n\n{footer}"
            return CallToolResult(
                content=[TextContent(type="text", text=text)],
                structured_content=structured,
                is_error=True,
            )
        text = f"{result.answer.strip()}\n\n---\n{footer}"
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=structured
        )
