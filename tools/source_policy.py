"""What an untrusted caller (an MCP client) may name as a source (docs/security.md).

`SourcePolicy()` is the CLI's and the Python API's: anything the machine's user can read. The
MCP server builds a confined one for each client call: files only under `roots` (after symlinks
and `..` are resolved), no hidden or well-known secret files, never the project's own database
and blob store, no stdin, and URLs only to public addresses (`tools.address_guard`).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from rlm_research.tools.address_guard import AddressGuard

# Names that hold keys or passwords wherever they are (hidden names are refused as a whole).
SECRET_NAMES = ("*.pem", "*.key", "*.p12", "*.pfx", "*.kdbx", "id_*", "credentials", "*.keystore")


class SourceRefused(Exception):
    """A source the policy does not allow; the message is one line (without the source's name,
    which the loader puts in front)."""


@dataclass(frozen=True)
class SourcePolicy:
    """`roots`: folders sources must lie under (None: anywhere). `allow_secrets`: hidden and
    secret-named files may be read. `protected`: files and folders never read (the project's
    database and blob store). `url_guard`: checks every URL connection (None: any address).
    `allow_stdin`: `-` reads stdin."""

    roots: tuple[Path, ...] | None = None
    allow_secrets: bool = True
    protected: tuple[Path, ...] = ()
    url_guard: AddressGuard | None = None
    allow_stdin: bool = True

    @property
    def confined(self) -> bool:
        return self.roots is not None or not self.allow_secrets or bool(self.protected)

    def check_path(self, path: Path) -> Path:
        """The resolved path to read, or SourceRefused. Resolving first means a symlink or `..`
        cannot lead out of a root; names are checked both as given and as resolved, so a link
        cannot dress a secret in an innocent name (nor the other way round)."""
        if not self.confined:
            return path
        given = Path(os.path.abspath(path.expanduser()))
        real = given.resolve()
        if self.roots is not None:
            if not self.roots:
                raise SourceRefused("refused: this server allows no source folders for this client")
            root = next((r for r in self.roots if real.is_relative_to(r)), None)
            if root is None:
                raise SourceRefused(
                    "refused: outside the folders this server reads sources from ("
                    + ", ".join(str(r) for r in self.roots)
                    + ")"
                )
        for p in self.protected:
            if real == p or real.is_relative_to(p):
                raise SourceRefused("refused: the server's own run database and blob store")
        if not self.allow_secrets:
            for candidate in (given, real):
                if reason := secret_reason(candidate, self.roots):
                    raise SourceRefused(f"refused: {reason}")
        return real

    def allows_in_walk(self, path: Path) -> bool:
        """Whether a folder walk may read `path` (a refused file is skipped, not an error)."""
        try:
            self.check_path(path)
        except SourceRefused:
            return False
        return True


def secret_reason(path: Path, roots: tuple[Path, ...] | None) -> str | None:
    """Why `path` looks like a secret: a hidden part (below its root, if any) or a secret name."""
    parts = path.parts
    for root in roots or ():
        if path.is_relative_to(root):
            parts = path.relative_to(root).parts
            break
    for part in parts:
        if part.startswith(".") and part not in (".", ".."):
            return f"hidden files and folders ({part}) are not read for clients"
    name = path.name.lower()
    if any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_NAMES):
        return f"{path.name} looks like a key or credentials file"
    return None


def project_store(db: Path) -> tuple[Path, ...]:
    """The run database (and its journal files), and the folders of run data beside it."""
    folder = db.parent.resolve()
    name = db.name
    files = [folder / (name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    cache = folder / "blob-cache"  # PostgreSQL runs: the local copies of blobs
    return (*files, folder / "blobs", folder / "reports", folder / "journals", cache)
