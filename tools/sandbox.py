"""How the REPL worker is launched: inside bubblewrap (`bwrap`) when it works here, else as a plain
subprocess with the same resource limits and a one-line warning. See docs/sandbox.md for what each
mode contains.

In bwrap mode the worker sees a read-only view of what it needs to run Python (`/usr`, the Python
installation, the venv, its own script), its sources read-only under `/context`, one writable
scratch folder at `/scratch`, a private size-capped `/tmp` and `/dev/shm`, a fresh `/proc` and
`/dev`; no home folder, no `/etc` beyond the linker's cache and the time zone (so no passwd or
shadow), no checkpoint database, no blob store, no project files. It runs in new
network (loopback only, so no network at all), PID, IPC, UTS and cgroup namespaces, in a new
session, and dies with its parent.

Processes: RLIMIT_NPROC counts the tasks of the worker's real uid, and the kernel never applies it
to root. So when the host runs as root the worker drops, after reading its sources, to a uid of
its own (a fresh one per worker, never a real account): the limit then counts that worker's
processes only, and the worker can no longer signal the host or read root's files. This is done in
bwrap mode always (we create every directory it must traverse), and in plain mode when the Python
installation is readable by other users. When the host is not root, bwrap puts the worker in a new
user namespace, where the kernel counts processes per namespace, so the limit is again the
worker's own. A plain worker of a non-root host shares its uid with the host: its limit is the
user's current task count plus `processes`.

Environment switch `RLM_SANDBOX`: `auto` (default: bwrap if it works), `bwrap` (fail if it does
not), `plain`.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import shutil
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MODE_ENV = "RLM_SANDBOX"
WORKER_DIR = "/rlm"
WORKER_DEST = f"{WORKER_DIR}/repl_worker.py"
WORKER_MODULES = (
    "repl_text_api.py",
    "text_search.py",
    "text_outline.py",
    "line_counting.py",
    "record_fields.py",
    "helper_grounding.py",
    "worker_process.py",
)
SCRATCH_DEST = "/scratch"
CONTEXT_DEST = "/context"
# Worker uids when the host is root: one per worker, from a range no distribution or container
# tool allocates (systemd documents 1879048192-2147352575 as unused), below 2**31.
UID_BASE, UID_SPAN = 2_000_000_000, 100_000_000


@dataclass
class Launch:
    """Everything `ReplWorker.start` needs to start one worker."""

    mode: str  # "bwrap" | "plain"
    argv: list[str]
    cwd: str
    env: dict[str, str]
    context_paths: dict[str, str]  # as the worker sees them
    uid: int | None = None  # the worker drops to this uid once it has read its sources
    nproc: int = 0  # RLIMIT_NPROC for the worker; 0: not set (it would not apply)
    notes: list[str] = field(default_factory=list)


# -- which mode ----------------------------------------------------------------------------------
def sandbox_mode() -> str:
    """ "bwrap" or "plain": how a worker started now would run (for the run's report)."""
    wanted = requested_mode()
    if wanted == "plain":
        return "plain"
    ok, reason = bwrap_works()
    if ok:
        return "bwrap"
    if wanted == "bwrap":
        raise RuntimeError(f"{MODE_ENV}=bwrap, but bubblewrap does not work here: {reason}")
    return "plain"


def requested_mode() -> str:
    value = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if value not in ("auto", "bwrap", "plain"):
        raise ValueError(f"{MODE_ENV} must be auto, bwrap or plain, not {value!r}")
    return value


_probe_lock = threading.Lock()
_probe_result: tuple[bool, str] | None = None


def bwrap_works() -> tuple[bool, str]:
    """Whether bwrap can start a sandbox here, and if not why; probed once per process.

    The cache is sound because what decides the answer does not change while a process runs:
    whether `bwrap` is installed, the kernel's namespace policy (sysctls, AppArmor, a container's
    seccomp profile), this process's privileges, and where Python is installed. Probing again
    on every worker start would add a bwrap launch to every start. If bwrap stopped working
    mid-process anyway, the next worker start fails loudly ("the REPL worker did not start")
    instead of silently running with less isolation; a new process probes again.
    """
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            _probe_result = _probe()
        return _probe_result


def _probe() -> tuple[bool, str]:
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bwrap is not installed"
    true = shutil.which("true") or "/bin/true"
    try:
        proc = subprocess.run(
            [exe, *_base_args(os.geteuid() == 0), "--", true],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"bwrap failed to run: {e}"
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        return False, f"bwrap refused to start a sandbox: {err[-1] if err else proc.returncode}"
    return True, ""


_warned = False


def _warn_plain() -> None:
    global _warned
    if not _warned:
        _warned = True
        why = "RLM_SANDBOX=plain" if requested_mode() == "plain" else bwrap_works()[1]
        log.warning(
            "REPL isolation is reduced (%s): model code runs as a plain subprocess with resource "
            "limits only; install bubblewrap for the full sandbox (docs/sandbox.md)",
            why,
        )


# -- the launch ----------------------------------------------------------------------------------
def plan(
    worker_script: Path,
    fds: tuple[int, int],
    scratch: str,
    context_paths: dict[str, str],
    *,
    processes: int,
    tmp_bytes: int,
) -> Launch:
    """How to start one worker whose pipe ends are `fds`, in the fresh folder `scratch`."""
    mode = sandbox_mode()
    root = os.geteuid() == 0
    env = {"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8", "LANG": "C.UTF-8"}
    if mode == "plain":
        _warn_plain()
        uid = _new_uid() if root and _python_readable_by_others(worker_script) else None
        if uid is not None:
            os.chown(scratch, uid, uid)
        if not processes:
            nproc = 0
        elif uid is not None:
            nproc = processes
        elif root:
            nproc = 0  # the kernel does not apply RLIMIT_NPROC to root
        else:
            nproc = _tasks_of_uid(os.getuid()) + processes
        argv = [sys.executable, "-I", str(worker_script), *map(str, fds)]
        env["HOME"] = scratch
        return Launch(mode, argv, scratch, env, dict(context_paths), uid, nproc)

    args = [shutil.which("bwrap") or "bwrap", *_base_args(root, tmp_bytes)]
    inside: dict[str, str] = {}
    for i, (name, path) in enumerate(context_paths.items()):
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:64] or "source"
        inside[name] = f"{CONTEXT_DEST}/{i}-{safe}"
        args += ["--ro-bind", str(path), inside[name]]
    args += ["--ro-bind", str(worker_script), WORKER_DEST]
    for name in WORKER_MODULES:  # the files the worker imports, beside it as on the host
        args += ["--ro-bind", str(worker_script.with_name(name)), f"{WORKER_DIR}/{name}"]
    args += ["--bind", scratch, SCRATCH_DEST, "--chdir", SCRATCH_DEST]
    uid = _new_uid() if root else None
    if uid is not None:
        os.chown(scratch, uid, uid)
    env["HOME"] = SCRATCH_DEST
    argv = [*args, "--", sys.executable, "-I", WORKER_DEST, *map(str, fds)]
    return Launch(mode, argv, scratch, env, inside, uid, processes)


def popen(launch: Launch, pass_fds: tuple[int, ...]) -> subprocess.Popen[bytes]:
    kwargs = {
        "pass_fds": pass_fds,
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "cwd": launch.cwd,
        "env": launch.env,
        "start_new_session": True,  # its own process group, so a timeout kills what it spawned
    }
    if launch.mode == "plain":
        return subprocess.Popen(launch.argv, **kwargs)
    return _launcher().submit(lambda: _BwrapPopen(launch.argv, **kwargs))


class _BwrapPopen(subprocess.Popen):
    """bwrap exits with 128 + N when the worker is killed by signal N; report it the way Popen
    reports a signal (-N), so "killed by SIGSEGV" reads the same in both modes. (A cell calling
    os._exit(139) itself reads as SIGSEGV too; bwrap's status cannot tell them apart.)"""

    @property
    def returncode(self) -> int | None:
        return self._rc

    @returncode.setter
    def returncode(self, value: int | None) -> None:
        self._rc = 128 - value if value is not None and 128 < value < 128 + 65 else value


class _Launcher:
    """Starts bwrap from one thread that lives as long as the process. `--die-with-parent` uses
    PR_SET_PDEATHSIG, which fires when the *thread* that forked bwrap ends: started from a graph
    node's pool thread, a worker would die with that thread instead of with the host."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.jobs: queue.Queue = queue.Queue()
        threading.Thread(target=self._serve, daemon=True, name="rlm-sandbox-launcher").start()

    def _serve(self) -> None:
        while True:
            fn, box, done = self.jobs.get()
            try:
                box.append((True, fn()))
            except BaseException as e:  # noqa: BLE001 - handed back to the caller
                box.append((False, e))
            done.set()

    def submit(self, fn):
        box: list = []
        done = threading.Event()
        self.jobs.put((fn, box, done))
        done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value


_launcher_lock = threading.Lock()
_launcher_obj: _Launcher | None = None


def _launcher() -> _Launcher:
    global _launcher_obj
    with _launcher_lock:
        if _launcher_obj is None or _launcher_obj.pid != os.getpid():  # none yet, or forked
            _launcher_obj = _Launcher()
        return _launcher_obj


# -- bwrap arguments shared by the probe and every worker ----------------------------------------
def _base_args(root: bool, tmp_bytes: int = 256 * 1024**2) -> list[str]:
    if root:
        # No user namespace: as root, one would map the worker to uid 0, which RLIMIT_NPROC
        # ignores. The worker starts as root with only the capabilities it needs to drop to its
        # own uid (and to read sources owned by another user), then drops them all for good.
        ns = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        ns += ["--unshare-cgroup-try", "--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_DAC_READ_SEARCH"):
            ns += ["--cap-add", cap]
    else:
        ns = ["--unshare-all", "--unshare-user"]
        if _supports("--disable-userns"):  # bwrap >= 0.8: no nested user namespaces
            ns.append("--disable-userns")
    args = [*ns, "--die-with-parent", "--new-session", "--hostname", "rlm-sandbox"]
    # The private /tmp and /dev/shm come first: the binds below may lie under /tmp (a venv or a
    # checkout in /tmp, as in CI), and a tmpfs mounted after them would hide them.
    args += ["--dev", "/dev"]
    for tmp in ("/tmp", "/dev/shm"):  # size-capped (tmpfs is memory); shm: semaphores
        size = ["--size", str(max(1 << 20, tmp_bytes))] if _supports("--size") else []
        args += ["--perms", "1777", *size, "--tmpfs", tmp]
    made: set[str] = {"/", "/tmp"}
    bound: list[str] = []

    def parents(dest: str) -> list[str]:
        # Directories above a bind are made world-traversable, whatever their modes are outside
        # (/root is 0700): the worker may run as an unprivileged uid.
        out = []
        for parent in reversed(Path(dest).parents):
            p = str(parent)
            if p in made or any(p == b or p.startswith(b + "/") for b in bound):
                continue
            made.add(p)
            out += ["--perms", "0755", "--dir", p]
        return out

    def ro_bind(path: str) -> None:
        if any(path == b or path.startswith(b + "/") for b in bound):
            return
        args.extend([*parents(path), "--ro-bind", path, path])
        bound.append(path)

    ro_bind("/usr")
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = f"/{name}"
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            ro_bind(top)
    # Harmless files some programs want: the dynamic linker's cache, time zone, alternatives.
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"):
        if os.path.exists(path):
            args += [*parents(path), "--ro-bind", path, path]
    if os.path.isdir("/etc/alternatives"):
        args += [*parents("/etc/alternatives"), "--ro-bind", "/etc/alternatives"]
        args.append("/etc/alternatives")
    for path in _python_dirs():
        ro_bind(path)
    args += ["--proc", "/proc"]
    for dest in (CONTEXT_DEST, WORKER_DIR, SCRATCH_DEST):
        args += [*parents(dest + "/x")]
    return args


_help_text: str | None = None


def _supports(flag: str) -> bool:
    """Whether this bwrap knows `flag` (older releases, e.g. Ubuntu 22.04's 0.6, lack a few)."""
    global _help_text
    if _help_text is None:
        try:
            exe = shutil.which("bwrap") or "bwrap"
            out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10)
            _help_text = out.stdout + out.stderr
        except (OSError, subprocess.TimeoutExpired):
            _help_text = ""
    return f"{flag} " in _help_text


def _python_dirs() -> list[str]:
    """The Python installation and the venv (the worker imports only the standard library, but a
    cell may import what the venv has, and a restored snapshot re-imports the cell's modules)."""
    dirs = {sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix}
    exe = os.path.realpath(sys.executable)
    if not any(exe.startswith(d.rstrip("/") + "/") for d in dirs):
        dirs.add(os.path.dirname(exe))
    # Shortest first, so a prefix inside another is covered by the outer bind.
    return sorted((os.path.realpath(d) for d in dirs if os.path.isdir(d)), key=len)


def _python_readable_by_others(worker_script: Path) -> bool:
    """Whether a uid of its own could still run the interpreter and the worker script (pyenv in
    /root, mode 0700, cannot): every directory on the way must be searchable by others."""
    scripts = [worker_script, *(worker_script.with_name(n) for n in WORKER_MODULES)]
    targets = [os.path.realpath(sys.executable), *map(str, scripts), *_python_dirs()]
    for target in targets:
        path = Path(target)
        for p in [*reversed(path.parents), path]:
            try:
                mode = p.stat().st_mode
            except OSError:
                return False
            need = stat.S_IXOTH if stat.S_ISDIR(mode) else stat.S_IROTH
            if not mode & need:
                return False
    return True


def _new_uid() -> int:
    return UID_BASE + random.randrange(UID_SPAN)


def _tasks_of_uid(uid: int) -> int:
    """Tasks (threads included, as RLIMIT_NPROC counts them) whose real uid is `uid`."""
    n = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                n += int(fields.get("Threads", "1"))
        except (OSError, ValueError, KeyError):
            continue
    return n


def describe() -> dict[str, object]:
    """What a worker started now would get (for reports and tests)."""
    mode = sandbox_mode()
    root = os.geteuid() == 0
    script = Path(__file__).with_name("repl_worker.py")
    own_uid = root and (mode == "bwrap" or _python_readable_by_others(script))
    return {"mode": mode, "own_uid": own_uid, "root": root}
