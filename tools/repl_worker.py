"""The REPL worker: a separate Python process that runs the model's code.

Standard library only, and started with `python -I`: it imports nothing of the project but the
modules bound beside it (`sandbox.WORKER_MODULES`: its reading helpers, the grounding note, its
process plumbing in `worker_process.py`), sees no API key, and talks to the host over two pipes
(4-byte length + JSON; never pickle, so a hostile cell cannot make the host unpickle anything).
The namespace persists across cells. `sub_lm` sends the requests to the host and blocks until
the host sends the answers back; the host runs them as nested graph invocations meanwhile.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import pickle
import re
import sys
import threading
import traceback
from typing import Any

if __package__:  # imported by the host, as rlm_research.tools.repl_worker
    from .helper_grounding import ungrounded_note
    from .repl_text_api import Hit, Hits, TextApi
    from .text_search import REPL_HELPERS, header_name, join_sources, source_variables
    from .worker_process import Channel, apply_limits, die_with_parent, drop_privileges
else:  # run as a script (`python -I`): its modules lie beside it, in the sandbox too
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from helper_grounding import ungrounded_note  # type: ignore[no-redef]
    from repl_text_api import Hit, Hits, TextApi  # type: ignore[no-redef]
    from text_search import (  # type: ignore[no-redef]
        REPL_HELPERS,
        header_name,
        join_sources,
        source_variables,
    )
    from worker_process import (  # type: ignore[no-redef]
        Channel,
        apply_limits,
        die_with_parent,
        drop_privileges,
    )

    del sys.path[0]  # the cell's own imports do not see the worker's folder

# A snapshot taken before the reading helpers moved to repl_text_api.py names `__main__.Hit`:
# kept importable here so that such a run resumes.
RESTORABLE = (Hit, Hits)

PROTECTED = REPL_HELPERS
# Spellings small models write for FINAL. Bound only while the name is free, so a cell's own
# variable called `final` keeps its value across cells.
ALIASES = {"final": "FINAL", "Final": "FINAL"}
# A snippet's placeholder ("<your question about the line>") left in a sub_lm prompt.
UNFILLED = re.compile(r"<your [a-z ,/-]{3,60}>")


class WebError(Exception):
    """A web search or fetch failed (bad key, rate limit, timeout, unreachable page)."""


class BoundedText(io.TextIOBase):
    """Keeps the first `limit` characters and counts the rest, so printing 1 GB costs no memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(s[:room])
            self.kept += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def text(self) -> str:
        return "".join(self.parts)


class Worker:
    def __init__(self, channel: Channel, setup: dict[str, Any]) -> None:
        self.channel = channel
        self.capture_limit = int(setup.get("capture_chars", 200_000))
        self.in_cell = False
        self.final: str | None = None
        self.searches: list[dict[str, Any]] = []  # this cell's grep calls: pattern, hit count
        self.ns: dict[str, Any] = {"__name__": "__main__"}
        self.pickles: dict[str, bytes] = {}  # the last snapshot's values, until the host fetches
        self._load_context(setup.get("context_paths", {}))
        self.loaded = {k: v for k, v in self.ns.items() if k != "__name__"}
        self.ns["answer"] = {"content": "", "ready": False}
        self._install_api(web=bool(setup.get("web")))

    def _load_context(self, paths: dict[str, str]) -> None:
        texts = {}
        for name, path in paths.items():
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                texts[name] = f.read()
        if list(texts) == ["context"]:
            self.ns["context"] = texts["context"]
            return
        for name, var in source_variables(list(texts)).items():
            self.ns[var] = texts[name]
        self.ns["context"] = join_sources(texts)
        self.ns["sources"] = [header_name(n) for n in texts]
        self.ns.setdefault("context", "")

    # -- the API the model's code sees ------------------------------------------------------
    def request(self, requests: list[dict[str, Any]]) -> list[str]:
        if not self.in_cell or threading.current_thread() is not threading.main_thread():
            raise RuntimeError("sub_lm can only be called from the cell's own code while it runs")
        for req in requests:
            blank = UNFILLED.search(req["prompt"])
            if blank:  # the prompt's snippet copied as is: the helpers would answer nonsense
                raise ValueError(f"replace {blank.group(0)} in your prompt with your own words")
        with self.channel.lock:
            self.channel.send({"op": "sub_lm", "requests": requests})
            reply = self.channel.recv()
        return [str(a) for a in reply["answers"]]

    def _host_call(self, fn: str, args: dict[str, Any]) -> Any:
        """A call the host makes for the cell (the worker has no network); the host journals it."""
        if not self.in_cell or threading.current_thread() is not threading.main_thread():
            raise RuntimeError(f"{fn} can only be called from the cell's own code while it runs")
        with self.channel.lock:
            self.channel.send({"op": "host_call", "fn": fn, "args": args})
            reply = self.channel.recv()
        if reply.get("error"):
            raise WebError(reply["error"])
        return reply.get("result")

    def _install_api(self, web: bool = False) -> None:
        self.api = {**self._model_api(), **TextApi(self).functions()}
        if web:
            self.api.update(self._web_api())

    def _model_api(self) -> dict[str, Any]:
        """Helpers, FINAL and the names the model's code sees for them."""

        def sub_lm(prompt: Any, context: Any = None) -> str:
            """Ask a fresh model instance; returns its answer as a string."""
            return sub_lm_batched([prompt], None if context is None else [context])[0]

        def sub_lm_batched(prompts: list[Any], contexts: list[Any] | None = None) -> list[str]:
            """Ask several fresh model instances in parallel; answers in the same order."""
            prompts = list(prompts)
            ctxs = list(contexts) if contexts is not None else [None] * len(prompts)
            reqs = [
                {"prompt": str(p), "context": None if c is None else str(c)}
                for p, c in zip(prompts, ctxs, strict=False)
            ]
            answers = self.request(reqs) if reqs else []
            asked = [r["prompt"] + "\n" + (r["context"] or "") for r in reqs]
            note = ungrounded_note(asked, str(self.ns.get("context") or ""))
            if note:
                print(note)
            return answers

        def FINAL(text: Any) -> str:  # noqa: N802 - the name models are trained on
            self.final = str(text)
            return self.final

        def FINAL_VAR(name: Any) -> str:  # noqa: N802
            key = name if isinstance(name, str) else None
            if key is None or key not in self.ns:
                raise NameError(f"FINAL_VAR: no variable named {name!r}")
            return FINAL(self.ns[key])

        def SHOW_VARS() -> list[str]:  # noqa: N802
            return sorted(k for k in self.ns if not k.startswith("_") and k not in PROTECTED)

        return {
            "sub_lm": sub_lm,
            "sub_lm_batched": sub_lm_batched,
            "llm_query": sub_lm,
            "llm_query_batched": sub_lm_batched,
            "rlm_query": sub_lm,
            "FINAL": FINAL,
            "FINAL_VAR": FINAL_VAR,
            "SHOW_VARS": SHOW_VARS,
        }

    def _web_api(self) -> dict[str, Any]:
        """Web research, made by the host (the worker has no network)."""

        def web_search(query: Any, max_results: int = 5) -> list[dict[str, str]]:
            """Search the web: a list of {"title", "url", "snippet"}."""
            args = {"query": str(query), "max_results": int(max_results)}
            return self._host_call("web_search", args)

        def fetch_url(url: Any) -> str:
            """The page at `url` as plain text."""
            return self._host_call("fetch_url", {"url": str(url)})

        return {"web_search": web_search, "fetch_url": fetch_url, "WebError": WebError}

    # -- running cells ---------------------------------------------------------------------
    def run_block(self, code: str, label: str) -> dict[str, Any]:
        self.ns.update(self.api)  # a cell may have overwritten them; put them back
        for alias, name in ALIASES.items():
            self.ns.setdefault(alias, self.api[name])
        out, err = BoundedText(self.capture_limit), BoundedText(self.capture_limit)
        error = None
        old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            tree = ast.parse(code, filename=label)
            tail = None
            # Like a notebook: a trailing expression is printed, so `context[:500]` shows something;
            # a text of several lines as lines (its repr is one line of "\n"s a model misreads).
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                tail = ast.Expression(tree.body.pop().value)
            exec(compile(tree, label, "exec"), self.ns)
            if tail is not None:
                value = eval(compile(tail, label, "eval"), self.ns)
                if isinstance(value, str) and "\n" in value.strip():
                    print(value)
                elif value is not None:
                    print(repr(value))
        except SystemExit as e:
            error = f"SystemExit({e.code!r}) was raised; the REPL keeps running"
        except BaseException as e:  # noqa: BLE001 - everything the cell raises is an observation
            error = _format_error(e, label)
        finally:
            sys.stdout, sys.stderr = old
        return {
            "stdout": out.text(),
            "stderr": err.text(),
            "dropped": out.dropped + err.dropped,
            "error": error,
        }

    def run_cell(self, blocks: list[str], cell: int) -> dict[str, Any]:
        # An answer given in an earlier cell was sent back (the run went on): not this cell's.
        self.final = None
        self.searches = []
        ans = self.ns.get("answer")
        if isinstance(ans, dict) and ans.get("ready"):
            ans["ready"] = False
        self.in_cell = True
        results = []
        try:
            for i, code in enumerate(blocks):
                results.append(self.run_block(code, f"<cell {cell}.{i + 1}>"))
                if results[-1]["error"] or self._answer_ready():
                    break
        finally:
            self.in_cell = False
        return {
            "op": "done",
            "blocks": results,
            "skipped": len(blocks) - len(results),
            "final": self._final_answer(),
            "searches": self.searches[-8:],
            "vars": self._summary(),
            "snapshot": self.snapshot(),
        }

    # -- snapshots: the namespace, per variable, content-addressed by the host ---------------
    def snapshot(self) -> dict[str, Any]:
        """Pickle each variable; the host fetches only the hashes it does not have yet. The
        sources are not pickled: a restored worker loads them again from the blob store."""
        values: dict[str, str] = {}
        modules: dict[str, str] = {}
        dropped: list[str] = []
        self.pickles = {}
        for name, value in self.ns.items():
            if name.startswith("__") or name in PROTECTED or self.loaded.get(name) is value:
                continue
            if name in ALIASES and value is self.api[ALIASES[name]]:
                continue
            if type(value).__name__ == "module":
                modules[name] = value.__name__
                continue
            try:
                data = pickle.dumps(value, protocol=5)
            except Exception:  # noqa: BLE001 - functions, generators, open files...
                dropped.append(name)
                continue
            digest = hashlib.sha256(data).hexdigest()
            self.pickles[digest] = data
            values[name] = digest
        return {"values": values, "modules": modules, "unpicklable": dropped}

    def fetch(self, hashes: list[str]) -> dict[str, Any]:
        blobs = {h: base64.b64encode(self.pickles[h]).decode() for h in hashes if h in self.pickles}
        self.pickles = {}
        return {"op": "blobs", "blobs": blobs}

    def restore(self, values: dict[str, str], modules: dict[str, str]) -> dict[str, Any]:
        dropped = []
        for name, modname in modules.items():
            try:
                self.ns[name] = __import__(modname, fromlist=["_"])
            except Exception:  # noqa: BLE001
                dropped.append(name)
        for name, data in values.items():
            try:
                self.ns[name] = pickle.loads(base64.b64decode(data))
            except Exception:  # noqa: BLE001 - a class defined in a lost cell, say
                dropped.append(name)
        return {"op": "restored", "dropped": dropped}

    def _answer_ready(self) -> bool:
        ans = self.ns.get("answer")
        return self.final is not None or (isinstance(ans, dict) and bool(ans.get("ready")))

    def _final_answer(self) -> str | None:
        if self.final is not None:
            return self.final
        ans = self.ns.get("answer")
        if isinstance(ans, dict) and ans.get("ready"):
            return str(ans.get("content", ""))
        return None

    def _summary(self) -> list[str]:
        rows = []
        for name, value in self.ns.items():
            if name.startswith("_") or name in PROTECTED or name == "__builtins__":
                continue
            if name == "answer" and value == {"content": "", "ready": False}:
                continue  # listed untouched, it invited small models to fill it in
            if type(value).__name__ in ("module", "function", "type", "builtin_function_or_method"):
                continue
            size = ""
            try:
                size = f", len {len(value):,}"
            except Exception:  # noqa: BLE001 - len() of arbitrary objects may raise anything
                pass
            rows.append(f"{name}: {type(value).__name__}{size}")
        return rows[:40]


def _format_error(e: BaseException, label: str) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith("<cell")]
    lines = traceback.format_list(frames[-5:]) if frames else []
    return ("".join(lines) + "".join(traceback.format_exception_only(type(e), e))).strip()


def main() -> None:
    die_with_parent()
    fd_in, fd_out = int(sys.argv[1]), int(sys.argv[2])
    channel = Channel(fd_in, fd_out)
    for fd in (fd_in, fd_out):
        os.set_inheritable(fd, False)  # a shell the cell starts does not get the host's pipe

    def forked_child() -> None:
        # A copy made by the cell's os.fork() must not talk to the host: its channel now reads
        # end-of-file and writes nowhere, so it exits when it reaches the protocol.
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (fd_in, fd_out):
            os.dup2(null, fd)
        os.close(null)

    os.register_at_fork(after_in_child=forked_child)
    # fd-level output (os.write, child processes) must not reach the host's terminal.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    setup = channel.recv()
    apply_limits(setup.get("limits", {}))
    worker = Worker(channel, setup)  # reads the sources while it still may
    drop_privileges(setup.get("uid"))
    channel.send({"op": "ready", "pid": os.getpid()})
    while True:
        msg = channel.recv()
        if msg["op"] == "run":
            channel.send(worker.run_cell(msg["blocks"], msg["cell"]))
        elif msg["op"] == "fetch":
            channel.send(worker.fetch(msg["hashes"]))
        elif msg["op"] == "restore":
            channel.send(worker.restore(msg["values"], msg["modules"]))
        elif msg["op"] == "shutdown":
            return


if __name__ == "__main__":
    main()
