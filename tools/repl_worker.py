"""The REPL worker: a separate Python process that runs the model's code.

Standard library only, and started with `python -I`: it imports nothing of the project but
`text_search.py` and `line_counting.py` (bound beside it), sees no API key, and talks to the
host over two pipes (4-byte length + JSON; never pickle, so a hostile cell cannot make the host
unpickle anything).
The namespace persists across cells. `sub_lm` sends the requests to the host and blocks until
the host sends the answers back; the host runs them as nested graph invocations meanwhile.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import os
import pickle
import re
import resource
import struct
import sys
import threading
import traceback
from typing import Any

if __package__:  # imported by the host, as rlm_research.tools.repl_worker
    from .line_counting import (
        PER_LINE_QUESTION,
        line_mark_request,
        lines_starting_with,
        mark_from_reply,
        says_yes,
    )
    from .text_search import (
        REPL_HELPERS,
        Outline,
        grep_pattern,
        header_name,
        heading_path,
        join_sources,
        line_index,
        nearest_headings,
        nearest_search,
        numbered,
        source_variables,
    )
else:  # run as a script (`python -I`): its modules lie beside it, in the sandbox too
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from line_counting import (  # type: ignore[no-redef]
        PER_LINE_QUESTION,
        line_mark_request,
        lines_starting_with,
        mark_from_reply,
        says_yes,
    )
    from text_search import (  # type: ignore[no-redef]
        REPL_HELPERS,
        Outline,
        grep_pattern,
        header_name,
        heading_path,
        join_sources,
        line_index,
        nearest_headings,
        nearest_search,
        numbered,
        source_variables,
    )

    del sys.path[0]  # the cell's own imports do not see the worker's folder

PROTECTED = REPL_HELPERS
# Spellings small models write for FINAL. Bound only while the name is free, so a cell's own
# variable called `final` keeps its value across cells.
ALIASES = {"final": "FINAL", "Final": "FINAL"}
# A snippet's placeholder ("<your question about the line>") left in a sub_lm prompt.
UNFILLED = re.compile(r"<your [a-z ,/-]{3,60}>")


# judge_lines' helper frames, measured on the embedded 1.5B model: asked the question itself of a
# line ("does this line count?"), helpers said no to all 79 lines carrying the asked label; asked
# a one-line question a helper wrote from it, line first, they judged 75 of 76 lines of three
# review sets and 218 of 218 labelled lines right (question first: 76 of 76, but 131 of 146).
class Hit(str):
    """A line `grep` found: the line's text, and `.n`, its line number (from 1) in the text
    searched. Shown as `12: 'the line'`, so printed hits say where they are; in a text with
    headings, also the headings it is under: `12: 'the line' (in 3: 'Chapter 2')`."""

    n: int
    within: str

    def __new__(cls, text: str, n: int, within: str = "") -> Hit:
        hit = super().__new__(cls, text)
        hit.n = n
        hit.within = within
        return hit

    def __repr__(self) -> str:
        where = f" (in {self.within})" if self.within else ""
        return f"{self.n}: {str.__repr__(self)}{where}"

    def __reduce__(self) -> tuple[Any, tuple[str, int, str]]:
        return (Hit, (str(self), self.n, getattr(self, "within", "")))


class Hits(list):
    """grep's result: a list of `Hit`s that prints each hit's headings only where they change
    from the hit before, so 86 hits under a few headings do not repeat them 86 times."""

    def __repr__(self) -> str:
        shown, before = [], None
        for hit in self:
            within = getattr(hit, "within", "")
            if isinstance(hit, Hit) and within and within == before:
                shown.append(f"{hit.n}: {str.__repr__(hit)}")
            else:
                shown.append(repr(hit))
            before = within
        return "[" + ", ".join(shown) + "]"

    __str__ = __repr__

    def __getitem__(self, key: Any) -> Any:
        got = super().__getitem__(key)
        return Hits(got) if isinstance(key, slice) else got


def grep_hits(
    pattern: Any, lines: list[str], whole_words: bool = True, outline: Outline | None = None
) -> list[Hit]:
    """`grep_lines`, each line with its line number and, given the text's outline, its headings."""
    rx = grep_pattern(pattern, whole_words, lines)
    found = [i for i, line in enumerate(lines) if rx.search(line)]
    if outline is None or not outline.at:
        return [Hit(lines[i], i + 1) for i in found]
    return Hits(Hit(lines[i], i + 1, heading_path(outline, lines, i)) for i in found)


class WebError(Exception):
    """A web search or fetch failed (bad key, rate limit, timeout, unreachable page)."""


class Channel:
    def __init__(self, fd_in: int, fd_out: int) -> None:
        self.r = os.fdopen(fd_in, "rb", buffering=0)
        self.w = os.fdopen(fd_out, "wb", buffering=0)
        self.lock = threading.Lock()

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.r.read(n - len(buf))
            if not chunk:
                os._exit(0)  # the host is gone: nothing left to do
            buf += chunk
        return bytes(buf)

    def recv(self) -> dict[str, Any]:
        (n,) = struct.unpack(">I", self._read_exact(4))
        return json.loads(self._read_exact(n))

    def send(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg, ensure_ascii=False, default=str).encode("utf-8", "replace")
        self.w.write(struct.pack(">I", len(data)) + data)


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
        self._outline_of: tuple[str, list[str], Outline] | None = None
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
    def _request(self, requests: list[dict[str, Any]]) -> list[str]:
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
        self.api = {**self._model_api(), **self._text_api()}
        if web:
            self.api.update(self._web_api())

    def _model_api(self) -> dict[str, Any]:
        """Helpers, FINAL and the names the model's code sees for them."""

        def sub_lm(prompt: Any, context: Any = None) -> str:
            """Ask a fresh model instance; returns its answer as a string."""
            ctx = None if context is None else str(context)
            return self._request([{"prompt": str(prompt), "context": ctx}])[0]

        def sub_lm_batched(prompts: list[Any], contexts: list[Any] | None = None) -> list[str]:
            """Ask several fresh model instances in parallel; answers in the same order."""
            prompts = list(prompts)
            ctxs = list(contexts) if contexts is not None else [None] * len(prompts)
            reqs = [
                {"prompt": str(p), "context": None if c is None else str(c)}
                for p, c in zip(prompts, ctxs, strict=False)
            ]
            return self._request(reqs) if reqs else []

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

    def _text_api(self) -> dict[str, Any]:
        """Reading `context` (or any text): grep, around, section_of, section, headings,
        judge_lines."""

        def grep(pattern: Any, text: Any = None) -> list[str]:
            """Lines of `text` (default `context`) with `pattern` as whole words, any case; or a
            regex (see `grep_pattern`). Each hit shows its line number and its headings."""
            src_ctx = self.ns.get("context", "")
            src = src_ctx if text is None else text
            lines, outline = self._lines_and_outline(src)
            hits = grep_hits(pattern, lines, outline=outline)
            # The host checks a count given as the answer against these (`answer_checks`).
            whole = text is None or (isinstance(text, str) and text == src_ctx)
            over = "context" if whole else "other"
            self.searches.append({"pattern": str(pattern)[:200], "hits": len(hits), "over": over})
            if not hits:
                print(nearest_search(str(pattern), lines, outline, whole))
            return hits

        def around(where: Any, before: int = 3, after: int = 3, text: Any = None) -> str:
            """The lines around a hit (or a line number, or the first line holding a text),
            each with its line number."""
            lines, _ = self._lines_and_outline(text)
            i = line_index(where, lines)
            start = max(0, i - int(before))
            return numbered(lines[start : i + int(after) + 1], start)

        def heading_above(where: Any, text: Any) -> tuple[list[str], Outline | None, int | None]:
            lines, outline = self._lines_and_outline(text)
            i = min(line_index(where, lines), len(lines) - 1)
            path = outline.path(i) if outline is not None and i >= 0 else []
            return lines, outline, (path[-1] if path else None)

        def section_of(where: Any, text: Any = None) -> str:
            """The nearest heading at or above a hit (or a line number, or a text): markdown #,
            numbered, underlined or ALL CAPS headings, changelog versions. "" if none."""
            lines, _, head = heading_above(where, text)
            return "" if head is None else Hit(lines[head], head + 1)

        def section(where: Any, text: Any = None) -> str:
            """The whole section a hit (or a line number, or a text) is in: the headings above
            its own (a subsection alone does not say which release or chapter it belongs to),
            its nearest heading, then every line up to the next heading of the same or a higher
            rank. "" if none."""
            lines, outline, head = heading_above(where, text)
            if head is None or outline is None:
                return ""
            outer = [lines[i] for i in outline.path(head, include_self=False)]
            body = lines[head : outline.end_of_section(head, len(lines))]
            return "\n".join(outer + body)

        def headings(words: Any = None, text: Any = None) -> list[str]:
            """The heading lines of `text` (default `context`) with their line numbers; only
            those holding `words` (matched as grep matches) if given. Not a search the count
            guard reviews: a heading line is a section, not a line that may or may not count."""
            lines, outline = self._lines_and_outline(text)
            rx = grep_pattern(words, lines=lines) if words else None
            at = outline.at if outline is not None else []
            found = Hits(Hit(lines[i], i + 1) for i in at if rx is None or rx.search(lines[i]))
            if words and not found and outline is not None and outline.at:
                print(nearest_headings(str(words), lines, outline))
            return found

        def judge_lines(lines: Any, question: Any) -> list[str]:
            """The lines that helpers judge to count for `question`: one helper turns it into
            a yes/no question about one line, then one helper per line answers that."""
            items = [str(x) for x in lines]
            if not items:
                return []
            made = self._request([{"prompt": PER_LINE_QUESTION + str(question), "context": None}])
            ask = next((s.strip() for s in made[0].splitlines() if s.strip()), "")
            ask = ask or f"Does this line count for the question: {question}"
            replies = self._request(
                [{"prompt": f"Line: {x}\n\n{ask} Reply yes or no.", "context": None} for x in items]
            )
            print(f"(judge_lines asked each line: {ask})")
            return [x for x, r in zip(items, replies, strict=True) if says_yes(r)]

        def count_lines(question: Any, text: Any = None) -> list[str]:
            """The lines of `text` (default `context`; not its headings) that `question` counts:
            one helper names the word or mark that starts each of them, then code finds the
            lines that start with it; the mark is printed with them."""
            lines, outline = self._lines_and_outline(text)
            heads = set(outline.at) if outline is not None else set()
            reply = self._request([{"prompt": line_mark_request(str(question)), "context": None}])
            mark = mark_from_reply(reply[0])
            if mark is None:
                print(f"(count_lines: the helper named no word or mark: {reply[0][:200]!r})")
                return Hits()
            body = [line if i not in heads else "" for i, line in enumerate(lines)]
            found = lines_starting_with(mark, body)
            paths = outline is not None and bool(outline.at)
            hits = Hits(
                Hit(lines[i], i + 1, heading_path(outline, lines, i) if paths else "")
                for i in found
            )
            over = "context" if text is None else "other"
            self.searches.append({"pattern": mark, "hits": len(hits), "over": over})
            print(
                f"(count_lines: a helper said the counted lines start with {mark!r}; "
                f"{len(hits)} lines start with it)"
            )
            return hits

        return {
            "grep": grep,
            "judge_lines": judge_lines,
            "count_lines": count_lines,
            "around": around,
            "section_of": section_of,
            "section": section,
            "headings": headings,
        }

    def _lines_and_outline(self, text: Any) -> tuple[list[str], Outline | None]:
        """`text` (default `context`) as lines, and for a string its outline, kept for `context`
        so that each grep does not scan a long text for headings again."""
        src = self.ns.get("context", "") if text is None else text
        if not isinstance(src, str):
            return [str(x) for x in src], None
        cached = self._outline_of
        if cached is not None and cached[0] is src:
            return cached[1], cached[2]
        lines = src.splitlines()
        outline = Outline(lines)
        if src is self.ns.get("context"):
            self._outline_of = (src, lines, outline)
        return lines, outline

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


def apply_limits(limits: dict[str, int]) -> None:
    """Best effort: a limit the system refuses is skipped, not fatal."""
    table = {
        "memory_bytes": resource.RLIMIT_AS,
        "cpu_seconds": resource.RLIMIT_CPU,
        "file_bytes": resource.RLIMIT_FSIZE,
        "open_files": resource.RLIMIT_NOFILE,
        "processes": resource.RLIMIT_NPROC,
    }
    for key, value in limits.items():
        if key in table and value:
            try:
                resource.setrlimit(table[key], (value, value))
            except (ValueError, OSError):
                pass
    # Limits are per process; if many processes together exhaust the machine's memory, the
    # kernel's OOM killer should pick this worker (and its children), never the host.
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def drop_privileges(uid: int | None) -> None:
    """No setuid program can give the cell new privileges; then, when the host is root and gave
    the worker a uid of its own, become it for good (after the sources are read): RLIMIT_NPROC
    then applies, and root's files and processes are out of reach."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except (OSError, AttributeError):
        pass
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise RuntimeError("could not drop privileges")


def die_with_parent() -> None:
    """The worker runs in its own session (so a timeout can kill its whole process group), so it
    does not get the host's signals: if the host is killed, exit instead of running on."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            threading.Event().wait(0.5)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


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
