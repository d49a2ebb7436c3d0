"""What the store package's modules share: its errors, and how a database is named in a
message (a URL's password masked). Its own module, so the backends need not import the package
that chooses them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class DatabaseUnavailable(RuntimeError):
    """The run database cannot be reached or set up; the message is one line, no password."""


class RunInProgress(RuntimeError):
    """Another process is running this run now (PostgreSQL: it holds the run's lock)."""


def describe(db: Path | str) -> str:
    """The database for messages: a URL with its password masked."""
    if "://" not in str(db):
        return str(db)
    try:
        parts = urlsplit(str(db))
        password = parts.password
    except ValueError:  # a malformed netloc: show the scheme only
        return str(db).split("://", 1)[0] + "://..."
    if password is None:
        return str(db)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
