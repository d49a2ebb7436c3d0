"""Source loaders: turn `--source` specs into named texts, before a run starts.

A spec is a file, a folder (read recursively), a PDF, an `http(s)://` URL, or `-` for stdin.
`web://` is not a source: it turns on web research (`Sources.web`).

Every problem (missing, unreadable, corrupt, binary, empty, too big, unreachable) raises
`SourceError` with one line that names the source, so nothing is half-started.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx
from rlm_research.tools.address_guard import AddressGuard, BlockedAddress
from rlm_research.tools.source_policy import SourcePolicy, SourceRefused

WEB = "web://"
TEXT_SUFFIXES_HTML = (".html", ".htm", ".xhtml")
# Folders never worth reading: version control, caches, virtual environments.
SKIP_DIRS = {"__pycache__", "node_modules", "venv", ".venv", "site-packages"}
SNIFF = 8192


class SourceError(Exception):
    """A source that cannot be used; the message is one line naming it."""


@dataclass
class Sources:
    """`texts`: name -> text, in the order given. `web`: `web://` was among the specs.
    `skipped`: files a folder walk left out (binary, empty), by name."""

    texts: dict[str, str] = field(default_factory=dict)
    web: bool = False
    skipped: list[str] = field(default_factory=list)

    def sizes(self) -> list[dict[str, object]]:
        return [{"name": n, "chars": len(t)} for n, t in self.texts.items()]

    def context(self) -> str | dict[str, str] | None:
        """What the graph takes: one source as plain text (`context`), several as a dict (one
        REPL variable each, all joined in `context`), none as None."""
        if not self.texts:
            return None
        if len(self.texts) == 1:
            return next(iter(self.texts.values()))
        return dict(self.texts)


def load_sources(
    specs: list[str],
    *,
    max_bytes: int,
    url_timeout: float = 30.0,
    stdin: BinaryIO | None = None,
    policy: SourcePolicy | None = None,
) -> Sources:
    """Load every spec; `max_bytes` caps each source (a folder counts as one). `policy` confines
    what an untrusted caller may name (default: anything this user can read)."""
    out = Sources()
    policy = policy or SourcePolicy()
    for spec in specs:
        if spec.strip() == "":
            raise SourceError("empty --source value")
        if spec.strip().lower().startswith(WEB):
            out.web = True
            continue
        if spec.lower().startswith(("http://", "https://")):
            text = load_url(spec, max_bytes=max_bytes, timeout=url_timeout, guard=policy.url_guard)
            _add(out, spec, text)
        elif spec == "-":
            if not policy.allow_stdin:
                raise SourceError("source '-' (stdin) is not available here; give a path")
            _add(out, "stdin", load_stdin(max_bytes=max_bytes, stream=stdin))
        else:
            path = _allowed(Path(spec).expanduser(), spec, policy)
            if path.is_dir():
                texts, skipped = load_folder(path, spec, max_bytes=max_bytes, policy=policy)
                for name, text in texts.items():
                    _add(out, name, text)
                out.skipped += skipped
            else:
                _add(out, spec, load_file(path, spec, max_bytes=max_bytes))
    return out


def _allowed(path: Path, name: str, policy: SourcePolicy) -> Path:
    try:
        return policy.check_path(path)
    except SourceRefused as e:
        raise SourceError(f"{name}: {e}") from None


def _add(out: Sources, name: str, text: str) -> None:
    if name in out.texts:
        if out.texts[name] == text:
            return  # the same source twice
        n = 2
        while f"{name} ({n})" in out.texts:
            n += 1
        name = f"{name} ({n})"
    out.texts[name] = text


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _too_big(name: str, size: int | None, max_bytes: int) -> SourceError:
    size_text = f"{_mb(size)}, " if size is not None else ""
    return SourceError(
        f"{name}: too big ({size_text}over the {_mb(max_bytes)} limit per source; "
        "raise max_source_bytes to allow it)"
    )


# -- files ---------------------------------------------------------------------------------------
def load_file(path: Path, name: str, *, max_bytes: int) -> str:
    """One file: PDF, HTML or text. Binary, empty, unreadable or oversized -> SourceError."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SourceError(f"{name}: no such file or folder") from None
    except OSError as e:
        raise SourceError(f"{name}: cannot read: {_os_reason(e)}") from None
    if not path.is_file():
        raise SourceError(f"{name}: not a regular file")
    if st.st_size > max_bytes:
        raise _too_big(name, st.st_size, max_bytes)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise SourceError(f"{name}: cannot read: {_os_reason(e)}") from None
    if len(data) > max_bytes:  # grew since stat, or a special file
        raise _too_big(name, None, max_bytes)
    text = bytes_to_text(data, name, suffix=path.suffix.lower())
    if not text.strip():
        raise SourceError(f"{name}: is empty")
    return text


def bytes_to_text(data: bytes, name: str, *, suffix: str = "", content_type: str = "") -> str:
    """Decode one document's bytes by its kind (PDF, HTML, text); binary -> SourceError."""
    ctype = content_type.split(";")[0].strip().lower()
    if data.startswith(b"%PDF-") or suffix == ".pdf" or ctype == "application/pdf":
        return pdf_to_text(data, name)
    text = decode_text(data, charset=_charset(content_type))
    if text is None:
        kind = f" ({ctype})" if ctype else ""
        raise SourceError(f"{name}: binary data{kind}, not text")
    if suffix in TEXT_SUFFIXES_HTML or ctype in ("text/html", "application/xhtml+xml"):
        return html_to_text(text)
    return text


def _os_reason(e: OSError) -> str:
    return e.strerror.lower() if e.strerror else type(e).__name__


def decode_text(data: bytes, charset: str | None = None) -> str | None:
    """Text from bytes, or None when it looks binary (NUL bytes, undecodable, control noise)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[: SNIFF * 4]:
        return None
    for encoding in filter(None, (charset, "utf-8-sig")):
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    # Legacy 8-bit text (cp1252) is common; accept it unless it is full of control bytes.
    sample = data[: SNIFF * 4]
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    if controls > len(sample) * 0.01:
        return None
    return data.decode("cp1252", errors="replace")


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None


def pdf_to_text(data: bytes, name: str) -> str:
    """Each page's text under a `--- page N ---` line. Corrupt, locked or textless -> error."""
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings would break the live view
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError(f"{name}: the PDF is password-protected")
        pages = []
        for i, page in enumerate(reader.pages, 1):
            pages.append(f"--- page {i} ---\n{(page.extract_text() or '').strip()}")
    except SourceError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise SourceError(f"{name}: not a readable PDF ({reason})") from None
    except Exception as e:  # noqa: BLE001 - pypdf raises many things on broken files
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise SourceError(f"{name}: not a readable PDF ({type(e).__name__}: {reason})") from None
    if not pages:
        raise SourceError(f"{name}: the PDF has no pages")
    text = "\n\n".join(pages)
    if not any(p.split("\n", 1)[1].strip() for p in pages):
        raise SourceError(f"{name}: the PDF has no extractable text (scanned images?)")
    return text


def html_to_text(html: str) -> str:
    """Readable text of an HTML page: one line per block element, inline markup joined, and
    scripts, styles and navigation dropped; the page title goes first."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "svg", "head", "nav"]):
        tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for cell in soup.find_all(["td", "th"]):
        cell.insert_after(" | ")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    lines = [" ".join(line.split()) for line in soup.get_text().splitlines()]
    body = "\n".join(line for line in lines if line)
    return f"{title}\n\n{body}" if title and not body.startswith(title) else body


_BLOCK_TAGS = [
    "p", "div", "section", "article", "main", "header", "footer", "aside", "h1", "h2", "h3", "h4",
    "h5", "h6", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "pre", "blockquote", "hr",
    "figure", "figcaption", "caption", "form", "body",
]  # fmt: skip


# -- folders -------------------------------------------------------------------------------------
def load_folder(
    folder: Path, spec: str, *, max_bytes: int, policy: SourcePolicy | None = None
) -> tuple[dict[str, str], list[str]]:
    """Every text-like file below `folder` (hidden and VCS/cache folders skipped), named
    `<folder>/<relative path>`. Binary, empty and image-only PDF files are skipped; a corrupt
    PDF is an error. Files `policy` refuses (a link out of a root, a key file) are skipped."""
    label = spec.rstrip("/\\") or spec
    texts: dict[str, str] = {}
    skipped: list[str] = []
    total = 0
    try:
        walk = sorted(_walk(folder))
    except OSError as e:
        raise SourceError(f"{spec}: cannot read folder: {_os_reason(e)}") from None
    for rel in walk:
        name = f"{label}/{rel}"
        path = folder / rel
        if policy is not None and policy.confined:
            if not policy.allows_in_walk(path):
                skipped.append(name)
                continue
            path = policy.check_path(path)
        try:
            size = path.stat().st_size
        except OSError as e:
            raise SourceError(f"{name}: cannot read: {_os_reason(e)}") from None
        if size == 0:
            skipped.append(name)
            continue
        total += size
        if total > max_bytes:
            raise SourceError(
                f"{spec}: too big (its files pass the {_mb(max_bytes)} limit per source at "
                f"{rel}; raise max_source_bytes or pick a smaller folder)"
            )
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SourceError(f"{name}: cannot read: {_os_reason(e)}") from None
        try:
            text = bytes_to_text(data, name, suffix=path.suffix.lower())
        except SourceError as e:
            if "binary data" in str(e) or "no extractable text" in str(e):
                skipped.append(name)
                continue
            raise
        if not text.strip():
            skipped.append(name)
            continue
        texts[name] = text
    if not texts:
        why = f" ({len(skipped)} binary or empty file(s) skipped)" if skipped else ""
        raise SourceError(f"{spec}: the folder has no text files{why}")
    return texts, skipped


def _walk(folder: Path):
    def fail(e: OSError) -> None:
        raise e

    for root, dirs, files in os.walk(folder, onerror=fail):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS]
        for f in files:
            if f.startswith("."):
                continue
            full = Path(root) / f
            if full.is_file():  # skips sockets, FIFOs and broken links
                yield full.relative_to(folder).as_posix()


# -- URLs and stdin ------------------------------------------------------------------------------
def load_url(
    url: str, *, max_bytes: int, timeout: float = 30.0, guard: AddressGuard | None = None
) -> str:
    """GET the URL (redirects followed, `timeout` s, at most `max_bytes`); HTML becomes text.
    With a `guard`, every connection (each redirect's too) goes to a public address only."""
    headers = {"User-Agent": "rlm-research/0.1 (+source loader)", "Accept": "*/*"}
    transport = guard.transport() if guard is not None else None
    try:
        if guard is not None:
            guard.check_url(url)  # before any request: the error names the address at once
        with (
            httpx.Client(
                timeout=timeout,
                follow_redirects=True,
                headers=headers,
                transport=transport,
                trust_env=guard is None,  # an environment proxy would bypass the guard
            ) as client,
            client.stream("GET", url) as resp,
        ):
            if resp.status_code >= 400:
                reason = resp.reason_phrase or ""
                raise SourceError(f"{url}: HTTP {resp.status_code} {reason}".rstrip())
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(url, int(declared), max_bytes)
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_big(url, None, max_bytes)
                chunks.append(chunk)
            content_type = resp.headers.get("content-type", "")
    except BlockedAddress as e:
        raise SourceError(f"{url}: {e}") from None
    except httpx.TimeoutException:
        raise SourceError(f"{url}: timed out after {timeout:g} s") from None
    except httpx.InvalidURL as e:
        raise SourceError(f"{url}: not a valid URL ({e})") from None
    except httpx.HTTPError as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise SourceError(f"{url}: cannot fetch ({reason})") from None
    suffix = Path(httpx.URL(url).path).suffix.lower()
    text = bytes_to_text(b"".join(chunks), url, suffix=suffix, content_type=content_type)
    if not text.strip():
        raise SourceError(f"{url}: the page has no text")
    return text


def load_stdin(*, max_bytes: int, stream: BinaryIO | None = None) -> str:
    """Everything piped to stdin (`--source -`)."""
    if stream is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise SourceError("stdin (-): nothing is piped in; use `... | rlm-research run ...`")
        stream = sys.stdin.buffer
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_big("stdin (-)", None, max_bytes)
    text = bytes_to_text(data, "stdin (-)")
    if not text.strip():
        raise SourceError("stdin (-): is empty")
    return text
