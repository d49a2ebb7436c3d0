"""Hostile code suite: model-written cells that attack the host, run in a real REPL worker in
each sandbox mode. Each case checks that the run goes on (the worker answers, or the next worker
starts), that what the model sees names the problem, that the checkpoint database and the blob
store are intact, and that the host is unharmed.

`bwrap` cases are skipped where bubblewrap does not work. In `plain` mode the cases it does not
contain are strict xfails whose reasons match the table in docs/sandbox.md; what plain mode
contains depends on whether the worker runs under a uid of its own (host is root and the Python
installation is readable by other users; see tools/sandbox.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from rlm_research.graph import resume, run
from rlm_research.graph.blob_store import BlobStore
from rlm_research.tools import repl_host, sandbox
from rlm_research.tools.repl_host import CellDone, SubLMCall, WorkerDied, WorkerLimits, start_worker

from tests.support.scripted_models import RuleModel, script

ROOT = Path(__file__).resolve().parents[1]
FAKE_KEY = "sk-hostile-test-" + uuid.uuid4().hex
CONTEXT = "The vault code is 7413.\n" + "filler\n" * 100


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(params=["bwrap", "plain"])
def mode(request, monkeypatch) -> str:
    if request.param == "bwrap":
        ok, why = sandbox.bwrap_works()
        if not ok:
            pytest.skip(f"bubblewrap does not work here: {why}")
    monkeypatch.setenv(sandbox.MODE_ENV, request.param)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)  # in the host's environment only
    return request.param


def own_uid() -> bool:
    """Whether a worker started now runs under a uid of its own (see tools/sandbox.py)."""
    return bool(sandbox.describe()["own_uid"])


def plain_gap(request, mode: str, contained: bool, reason: str) -> None:
    """In plain mode, a case the sandbox does not contain is a strict xfail with its reason."""
    if mode == "plain" and not contained:
        request.applymarker(pytest.mark.xfail(reason=f"plain mode: {reason}", strict=True))


@dataclass
class Data:
    """A data folder as a run has it: a checkpoint database and a blob store holding the
    context the worker reads."""

    root: Path
    db: Path
    blobs: Path
    context_path: str

    def files(self) -> dict[str, str]:
        return {
            str(p.relative_to(self.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.blobs.rglob("*"))
            if p.is_file()
        }

    def assert_intact(self, before: dict[str, str]) -> None:
        conn = sqlite3.connect(self.db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT note FROM marker").fetchall() == [("untouched",)]
        finally:
            conn.close()
        assert self.files() == before
        for rel in before:  # content-addressed: every blob still hashes to its own name
            path = self.root / rel
            assert hashlib.sha256(path.read_bytes()).hexdigest() == "".join(path.parts[-2:])


@pytest.fixture
def data(tmp_path: Path):
    root = tmp_path / "data"
    store = BlobStore(root / "blobs")
    ref = store.put_text(CONTEXT)
    store.put_text("another blob")
    db = root / "runs.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE marker (note TEXT)")
    conn.execute("INSERT INTO marker VALUES ('untouched')")
    conn.commit()
    conn.close()
    d = Data(root=root, db=db, blobs=root / "blobs", context_path=str(store.path(ref)))
    before = d.files()
    yield d
    d.assert_intact(before)


@pytest.fixture
def workers():
    """Starts workers on fresh level ids; stops them all at the end."""
    levels: list[str] = []

    def start(data: Data, **limits) -> repl_host.ReplWorker:
        limits.setdefault("cell_timeout", 10.0)
        level = "hostile-" + uuid.uuid4().hex[:8]
        levels.append(level)
        return start_worker(level, {"context": data.context_path}, WorkerLimits(**limits))

    yield start
    for level in levels:
        repl_host.stop_worker(level)


def cell(worker: repl_host.ReplWorker, code: str, n: int = 1) -> tuple[object, str]:
    """Run one cell; returns the event and what the model would read of it."""
    event = worker.run([code], n)
    if isinstance(event, WorkerDied):
        return event, event.reason
    if isinstance(event, CellDone):
        b = event.result["blocks"][0]
        return event, "\n".join(x for x in (b["stdout"], b["stderr"], b["error"] or "") if x)
    return event, repr(event)


def still_works(worker: repl_host.ReplWorker, n: int = 9) -> None:
    event, text = cell(worker, "print('vault' in context, 6 * 7)", n)
    assert isinstance(event, CellDone) and "True 42" in text, text


# -- reading what is not a source -----------------------------------------------------------------
def test_read_home_folder(mode, request, data, workers):
    plain_gap(request, mode, own_uid(), "the worker runs as the host's user and reads its home")
    home = Path.home()
    canary = home / f".rlm-hostile-canary-{uuid.uuid4().hex}"
    try:
        canary.write_text("home secret")
        canary.chmod(0o600)
    except OSError:
        pytest.skip("cannot write a canary file into the home folder")
    try:
        worker = workers(data)
        code = f"print(open({str(canary)!r}).read())"
        event, text = cell(worker, code)
        assert isinstance(event, CellDone) and "home secret" not in text
        assert "FileNotFoundError" in text or "PermissionError" in text
        listing = f"import os\nprint(sorted(os.listdir({str(home)!r})))"
        event, text = cell(worker, listing, 2)
        assert canary.name not in text
        still_works(worker)
    finally:
        canary.unlink(missing_ok=True)


def test_read_etc_passwd(mode, request, data, workers):
    plain_gap(request, mode, False, "/etc/passwd is world-readable on the host")
    event, text = cell(workers(data), "print(open('/etc/passwd').read())")
    assert "root:" not in text and "FileNotFoundError" in text


def test_read_etc_shadow(mode, request, data, workers):
    readable = os.geteuid() == 0
    plain_gap(request, mode, own_uid() or not readable, "a root worker reads /etc/shadow")
    event, text = cell(workers(data), "print(open('/etc/shadow').read())")
    assert "root:" not in text
    assert "FileNotFoundError" in text or "PermissionError" in text


def test_read_checkpoint_database(mode, request, data, workers):
    plain_gap(request, mode, own_uid(), "the worker can open the data folder by its path")
    code = f"print(open({str(data.db)!r}, 'rb').read()[:16])"
    event, text = cell(workers(data), code)
    assert "SQLite format" not in text
    assert "FileNotFoundError" in text or "PermissionError" in text


def test_host_environment_via_proc(mode, request, data, workers):
    plain_gap(request, mode, own_uid(), "/proc/<host pid>/environ is readable by the same user")
    code = (
        "import os\n"
        "try:\n    print(open(f'/proc/{os.getppid()}/environ', 'rb').read())\n"
        "except OSError as e:\n    print('refused', e)"
    )
    event, text = cell(workers(data), code)
    assert FAKE_KEY not in text and "refused" in text


def test_print_environ_has_no_keys(mode, data, workers):
    assert os.environ["OPENAI_API_KEY"] == FAKE_KEY
    event, text = cell(workers(data), "import os\nprint(dict(os.environ))")
    assert isinstance(event, CellDone)
    assert FAKE_KEY not in text and "OPENAI_API_KEY" not in text and "PATH" in text


# -- writing and deleting ------------------------------------------------------------------------
def test_write_outside_scratch(mode, request, data, workers):
    plain_gap(request, mode, False, "the worker may write wherever its uid may (/tmp at least)")
    mark = uuid.uuid4().hex
    targets = [data.root / f"planted-{mark}", Path(f"/tmp/rlm-planted-{mark}")]
    targets.append(Path(sys.prefix) / f"planted-{mark}")
    code = "import os\nopen('in-scratch.txt', 'w').write('ok')\nprint('scratch ok')\n"
    for t in targets:
        code += (
            f"try:\n    open({str(t)!r}, 'w').write('x')\n    print('WROTE', {str(t)!r})\n"
            "except OSError as e:\n    print('refused', type(e).__name__)\n"
        )
    try:
        event, text = cell(workers(data), code)
        assert "scratch ok" in text, text
        # The data folder and the venv refuse the write; /tmp takes it, but in bwrap it is the
        # sandbox's own /tmp: the host never sees the file.
        assert f"WROTE {targets[0]}" not in text and f"WROTE {targets[2]}" not in text
        assert "refused" in text
        assert not any(t.exists() for t in targets)
    finally:
        for t in targets:
            t.unlink(missing_ok=True)


def test_delete_or_corrupt_database_and_blobs(mode, request, data, workers):
    plain_gap(request, mode, own_uid(), "the worker may delete and overwrite the host's files")
    code = (
        "import os, shutil\n"
        f"for p in [{str(data.db)!r}, {str(data.db)!r} + '-wal']:\n"
        "    try:\n        open(p, 'wb').write(b'garbage')\n        print('CORRUPTED', p)\n"
        "    except OSError as e:\n        print('refused', type(e).__name__)\n"
        f"for fn in (shutil.rmtree, os.remove):\n"
        f"    try:\n        fn({str(data.blobs)!r})\n        print('DELETED')\n"
        "    except OSError as e:\n        print('refused', type(e).__name__)\n"
        # The source file itself, where the worker sees it (read-only under /context in bwrap).
        "import glob\n"
        f"src = (glob.glob('/context/*') or [{data.context_path!r}])[0]\n"
        "try:\n    open(src, 'a').write('x')\n    print('APPENDED')\n"
        "except OSError as e:\n    print('refused', type(e).__name__)\n"
    )
    worker = workers(data)
    event, text = cell(worker, code)
    assert isinstance(event, CellDone), text
    assert "CORRUPTED" not in text and "DELETED" not in text and "APPENDED" not in text
    assert "refused" in text
    still_works(worker)


# -- network ---------------------------------------------------------------------------------------
def test_socket_to_a_local_server(mode, request, data, workers):
    plain_gap(request, mode, False, "the worker shares the host's network")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    got: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"host secret")
                got.append(b"connected")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    code = (
        "import socket\n"
        f"try:\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "    print(s.recv(100))\nexcept OSError as e:\n    print('no network:', e)"
    )
    try:
        event, text = cell(workers(data), code)
    finally:
        stop.set()
        thread.join(5)
        server.close()
    assert "host secret" not in text and not got
    assert "no network" in text


# -- processes -------------------------------------------------------------------------------------
def _marked(mark: str) -> list[int]:
    """Pids of the bomb's processes still alive (each runs `sleep <mark>`)."""
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmd = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if mark.encode() in cmd:
                out.append(int(entry.name))
    return out


def test_fork_bomb(mode, data, workers):
    """A bounded bomb (at most 400 children, each a `sleep`): the process limit stops it where
    the kernel applies one; a root plain worker is stopped only by the cell timeout."""
    limited = mode == "bwrap" or own_uid() or os.geteuid() != 0
    mark = f"{30 + uuid.uuid4().int % 1000 / 1000:.3f}"
    code = (
        "import os, time\n"
        "for i in range(400):\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/usr/bin/sleep', ['sleep', '{mark}'])\n"
        "time.sleep(60)\n"
    )
    worker = workers(data, processes=32, cell_timeout=4.0)
    started = time.monotonic()
    event, text = cell(worker, code)
    if limited:
        assert isinstance(event, CellDone) and "BlockingIOError" in text, text
        assert "Resource temporarily unavailable" in text
        assert len(_marked(mark)) <= 32
        still_works(worker)
    else:
        assert isinstance(event, WorkerDied) and "longer than the 4 s limit" in text
    assert time.monotonic() - started < 15
    worker.kill()
    deadline = time.monotonic() + 5
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(mark) == [], "processes of the bomb outlived the worker"
    still_works(workers(data))


def test_memory_bomb(mode, data, workers):
    worker = workers(data, memory_bytes=1024**3)
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024 * 1024))"
    event, text = cell(worker, code)
    assert isinstance(event, CellDone) and "MemoryError" in text, text
    event, text = cell(worker, "x = bytearray(8 * 1024**3)", 2)
    assert "MemoryError" in text
    still_works(worker)


def test_infinite_loop(mode, data, workers):
    mark = f"{600 + uuid.uuid4().int % 1000 / 1000:.3f}"
    worker = workers(data, cell_timeout=1.5)
    code = f"import subprocess\nsubprocess.Popen(['sleep', '{mark}'])\nwhile 1: pass"
    event, text = cell(worker, code)
    assert isinstance(event, WorkerDied) and "longer than the 1.5 s limit" in text
    assert not worker.alive
    deadline = time.monotonic() + 5
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(mark) == [], "a process the cell started outlived the timeout"
    still_works(workers(data))


def test_forked_copy_of_the_worker_stays_quiet(mode, data, workers):
    """A copy of the worker made by os.fork() runs the rest of the cell too; it must not answer
    the host (two results for one cell would shift every later cell's result by one)."""
    worker = workers(data)
    code = "import os, time\npid = os.fork()\nif pid == 0:\n    r = sub_lm('from the copy')\n"
    code += "time.sleep(0.3)\nprint('parent' if pid else 'child')"
    event, text = cell(worker, code)
    assert isinstance(event, CellDone) and text.strip() == "parent", text
    for n in range(2, 5):
        event, text = cell(worker, f"print({n} * 2)", n)
        assert text.strip() == str(n * 2)


@pytest.mark.parametrize(
    "code, says",
    [
        ("import sys\nsys.exit(3)", "SystemExit(3) was raised; the REPL keeps running"),
        ("raise SystemExit", "SystemExit(None) was raised"),
        ("import os\nos._exit(5)", "the REPL process exited (code 5)"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL"),
    ],
    ids=["sys.exit", "SystemExit", "os._exit", "kill-self"],
)
def test_exits(mode, data, workers, code, says):
    worker = workers(data)
    event, text = cell(worker, code)
    assert says in text
    if isinstance(event, WorkerDied):
        assert not worker.alive
        worker = workers(data)
    still_works(worker)


HOST = """
import json, sys
sys.path.insert(0, {root!r})
from rlm_research.tools.repl_host import WorkerLimits, start_worker
worker = start_worker("k", {{}}, WorkerLimits(cell_timeout=10))
event = worker.run([sys.argv[1]], 1)
print(json.dumps({{"event": type(event).__name__, "text": repr(event)}}), flush=True)
worker.shutdown()
"""


def test_kill_the_parent_process(mode, request):
    """Run in a throwaway host process, so that a plain worker that kills its parent kills that
    process, not the test run."""
    plain_gap(request, mode, own_uid(), "the worker runs as the host's user and can signal it")
    code = (
        "import os, signal\n"
        "for pid in (os.getppid(), os.getpgid(0), os.getsid(0)):\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError as e:\n        print('refused', e)\n"
        "print('after kill')"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-c", HOST.format(root=str(ROOT)), code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"the host process died: {proc.returncode} {proc.stderr[-300:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["event"] in ("CellDone", "WorkerDied"), result


# -- output and recursion ---------------------------------------------------------------------
def test_print_one_gigabyte(mode, data, workers):
    worker = workers(data, capture_chars=10_000)
    code = (
        "import os\nprint('x' * 10**9)\n"
        "for _ in range(1000):\n    print('y' * 10**6)\n"
        "os.write(1, b'z' * 10**8)\nprint('end')"
    )
    event, text = cell(worker, code)
    assert isinstance(event, CellDone), text
    block = event.result["blocks"][0]
    assert len(block["stdout"]) == 10_000 and block["dropped"] > 1.99 * 10**9
    still_works(worker)


def test_deep_recursion(mode, data, workers):
    worker = workers(data)
    event, text = cell(worker, "def f(n):\n    return f(n + 1)\nf(0)")
    assert isinstance(event, CellDone) and "RecursionError" in text
    code = "import sys\nsys.setrecursionlimit(10**7)\nx = []\nfor _ in range(10**6):\n    x = [x]\n"
    code += "print(str(x)[:10])"
    event, text = cell(worker, code, 2)
    # Past the C stack the interpreter crashes: the worker is lost, the next one starts fresh. On a
    # loaded machine building the nested list can outlast the cell limit first: also contained.
    contained = ("SIGSEGV", "RecursionError", "MemoryError", "limit and was stopped")
    assert any(word in text for word in contained), text
    if isinstance(event, WorkerDied):
        worker = workers(data)
    still_works(worker)


# -- the REPL's own API --------------------------------------------------------------------------
def test_threads_keep_calling_sub_lm_after_the_cell(mode, data, workers):
    worker = workers(data)
    code = (
        "import threading, time\nerrors = []\n"
        "def spam():\n"
        "    for _ in range(100):\n"
        "        try:\n            sub_lm('leak')\n"
        "        except Exception as e:\n            errors.append(str(e))\n"
        "        time.sleep(0.01)\n"
        "threading.Thread(target=spam, daemon=True).start()\n"
        "print('started')"
    )
    event, text = cell(worker, code)
    assert isinstance(event, CellDone) and "started" in text
    event, text = cell(worker, "import time\ntime.sleep(1.5)\nprint(len(errors), errors[0])", 2)
    assert isinstance(event, CellDone), text
    assert "sub_lm can only be called from the cell's own code while it runs" in text
    event = worker.run(["r = sub_lm('real one')"], 3)  # the real thing still works
    assert isinstance(event, SubLMCall) and event.requests[0]["prompt"] == "real one"
    assert isinstance(worker.answer(["fine"]), CellDone)
    event, text = cell(worker, "print(r)", 4)
    assert text.strip() == "fine"


def test_overwriting_sub_lm_and_answer(mode, data, workers):
    worker = workers(data)
    code = (
        "sub_lm = lambda *a, **k: 'forged'\nllm_query = None\nFINAL = print\n"
        "answer = 'not a dict'\nprint(sub_lm('x'))"
    )
    event, text = cell(worker, code)
    assert isinstance(event, CellDone) and "forged" in text
    assert event.result["final"] is None  # a string `answer` is not an answer
    event = worker.run(["r = sub_lm('real')\nFINAL(r)"], 2)
    assert isinstance(event, SubLMCall) and event.requests[0]["prompt"] == "real"
    event = worker.answer(["from the host"])
    assert isinstance(event, CellDone) and event.result["final"] == "from the host"


@pytest.mark.parametrize(
    "frame",
    [
        "struct.pack('>I', 9) + b'not json!'",
        "struct.pack('>I', 4_000_000_000)",
        "struct.pack('>I', 2) + b'[]'",
        'struct.pack(\'>I\', 30) + b\'{"op": "sub_lm", "requests": 7}\'',
    ],
)
def test_forged_messages_on_the_host_pipe(mode, data, workers, frame):
    worker = workers(data)
    code = (
        "import struct\ncells = [c.cell_contents for c in sub_lm_batched.__closure__]\n"
        "ch = next(c for c in cells if hasattr(c, 'channel')).channel\n"
        f"ch.w.write({frame})\nimport time\ntime.sleep(5)"
    )
    event = worker.run([code], 1)
    assert isinstance(event, WorkerDied) and "protocol error" in event.reason


# -- through the whole graph -------------------------------------------------------------------
def py(code: str) -> str:
    return f"Next step.\n```python\n{code}\n```"


def test_graph_run_goes_on_after_hostile_cells(mode, make_settings):
    sub = RuleModel(fn=lambda msgs: "sub answer")
    root = script(
        py("keep = 41\nsub_lm = lambda *a: 'forged'\nanswer = 'nope'\nprint(sub_lm('x'))"),
        py("while True:\n    pass"),
        py("import os\nos._exit(9)"),
        py("import sys\nsys.exit(1)"),
        py("r = sub_lm('real')\nFINAL(f'{keep + 1} {r}')"),
    )
    settings = make_settings(model=root, sub_model=sub, cell_timeout=1.5)
    result = run("What is the vault code?", CONTEXT, settings=settings)
    assert result.stop_reason == "answered" and result.answer == "42 sub answer"
    seen = [t["observation"] for t in result.trajectory if t["depth"] == 0]
    assert "forged" in seen[0]
    assert "longer than the 1.5 s limit" in seen[1]
    assert "exited (code 9)" in seen[2]
    assert "SystemExit(1)" in seen[3]
    assert result.usage["sub_calls"] == 1  # the forged sub_lm cost nothing, the real one counted


def test_graph_run_that_attacks_its_own_data(mode, request, make_settings, tmp_path):
    plain_gap(request, mode, own_uid(), "the worker may delete and overwrite the host's files")
    data_dir = tmp_path / "data"
    db, blobs = data_dir / "runs.sqlite", data_dir / "blobs"
    attack = (
        "import os, shutil\nhits = []\n"
        f"for p in [{str(db)!r}, {str(db)!r} + '-wal']:\n"
        "    try:\n        open(p, 'wb').write(b'garbage')\n        hits.append('corrupted')\n"
        "    except OSError as e:\n        hits.append(type(e).__name__)\n"
        f"try:\n    shutil.rmtree({str(blobs)!r})\n    hits.append('deleted')\n"
        "except OSError as e:\n    hits.append(type(e).__name__)\n"
        "print(hits)"
    )
    root = script(py(attack), py("FINAL(str(len(context)))"))
    settings = make_settings(model=root, data_dir=str(data_dir))
    result = run("q", CONTEXT, settings=settings, run_id="attacked")
    assert result.answer == str(len(CONTEXT))
    first = result.trajectory[0]["observation"]
    assert "corrupted" not in first and "deleted" not in first
    assert "Error" in first  # FileNotFoundError (bwrap) or PermissionError (own uid)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    for p in blobs.rglob("*"):
        if p.is_file() and not p.name.startswith(".tmp"):
            assert hashlib.sha256(p.read_bytes()).hexdigest() == p.parent.name + p.name
    again = resume("attacked", settings=settings)  # the run is still whole and resumable
    assert again.answer == result.answer
