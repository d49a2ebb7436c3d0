"""Source loaders: each kind of source, and each way one can be bad (one line naming it)."""

from __future__ import annotations

import functools
import http.server
import io
import socket
import threading
from pathlib import Path

import pytest
from rlm_research.tools.sources import SourceError, load_sources

MB = 1024 * 1024


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (built by hand)."""
    objects: list[bytes] = []
    n = len(pages)
    font_id = 3 + 2 * n
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def load(*specs: str, max_bytes: int = MB, **kw):
    return load_sources(list(specs), max_bytes=max_bytes, **kw)


def error_of(*specs: str, max_bytes: int = MB, **kw) -> str:
    with pytest.raises(SourceError) as info:
        load(*specs, max_bytes=max_bytes, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- files and folders ---------------------------------------------------------------------------
def test_text_file_is_named_as_given(tmp_path: Path):
    f = tmp_path / "notes.txt"
    f.write_text("héllo wörld\nsecond line\n", encoding="utf-8")
    sources = load(str(f))
    assert sources.texts == {str(f): "héllo wörld\nsecond line\n"}
    assert sources.context() == "héllo wörld\nsecond line\n"
    assert sources.sizes() == [{"name": str(f), "chars": 24}]
    assert not sources.web


def test_legacy_encodings_decode(tmp_path: Path):
    (tmp_path / "a.txt").write_bytes("caf\xe9 cr\xe8me".encode("cp1252"))
    (tmp_path / "b.txt").write_bytes("utf16 text".encode("utf-16"))
    sources = load(str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    assert list(sources.texts.values()) == ["café crème", "utf16 text"]
    assert isinstance(sources.context(), dict)  # several sources: one variable each


def test_folder_is_read_recursively_skipping_binaries_and_hidden(tmp_path: Path):
    root = tmp_path / "notes"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "__pycache__").mkdir()
    (root / "a.md").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    (root / "sub" / "deeper" / "c.csv").write_text("x,y\n1,2\n")
    (root / "sub" / "report.pdf").write_bytes(make_pdf(["Quarterly figure 9981"]))
    (root / ".git" / "config").write_text("hidden vcs")
    (root / ".hidden.txt").write_text("hidden file")
    (root / "__pycache__" / "m.txt").write_text("cache")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (root / "empty.txt").write_text("")
    sources = load(str(root))
    assert sorted(sources.texts) == [
        f"{root}/a.md",
        f"{root}/sub/b.txt",
        f"{root}/sub/deeper/c.csv",
        f"{root}/sub/report.pdf",
    ]
    assert "9981" in sources.texts[f"{root}/sub/report.pdf"]
    assert sorted(sources.skipped) == [f"{root}/empty.txt", f"{root}/image.png"]


def test_folder_names_are_relative_to_the_spec(tmp_path: Path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert list(load("docs/").texts) == ["docs/x.txt"]


def test_pdf_pages_are_marked(tmp_path: Path):
    f = tmp_path / "r.pdf"
    f.write_bytes(make_pdf(["First page text", "The answer is 4217"]))
    text = load(str(f)).texts[str(f)]
    assert "--- page 1 ---" in text and "First page text" in text
    assert "--- page 2 ---\nThe answer is 4217" in text


def test_stdin(tmp_path: Path):
    sources = load("-", stdin=io.BytesIO(b"piped text"))
    assert sources.texts == {"stdin": "piped text"}


def test_web_is_a_flag_not_a_source(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("a")
    sources = load("web://", str(f))
    assert sources.web is True
    assert list(sources.texts) == [str(f)]
    assert load("web://").context() is None


def test_same_source_twice_is_loaded_once(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("a")
    assert list(load(str(f), str(f)).texts) == [str(f)]


# -- bad sources ---------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path):
    msg = error_of(str(tmp_path / "nope.txt"))
    assert "nope.txt" in msg and "no such file" in msg


def test_unreadable_file(tmp_path: Path, monkeypatch):
    f = tmp_path / "secret.txt"
    f.write_text("x")
    real_open = open

    def deny(path, *a, **kw):  # root ignores chmod, so refuse the read itself
        if str(path) == str(f):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr("builtins.open", deny)
    msg = error_of(str(f))
    assert "secret.txt" in msg and "permission denied" in msg


def test_corrupt_pdf(tmp_path: Path):
    f = tmp_path / "broken.pdf"
    f.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R\ngarbage" + b"\x00" * 50)
    msg = error_of(str(f))
    assert "broken.pdf" in msg and "not a readable PDF" in msg


def test_corrupt_pdf_inside_a_folder_is_named(tmp_path: Path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ok.txt").write_text("ok")
    (tmp_path / "d" / "bad.pdf").write_bytes(b"%PDF-1.7 truncated")
    assert "bad.pdf" in error_of(str(tmp_path / "d"))


def test_binary_file(tmp_path: Path):
    f = tmp_path / "blob.bin"
    f.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    msg = error_of(str(f))
    assert "blob.bin" in msg and "binary" in msg


def test_folder_with_only_binaries(tmp_path: Path):
    (tmp_path / "bins").mkdir()
    (tmp_path / "bins" / "a.bin").write_bytes(b"\x00\x01\x02")
    msg = error_of(str(tmp_path / "bins"))
    assert "bins" in msg and "no text files" in msg


def test_oversized_file_and_folder(tmp_path: Path):
    f = tmp_path / "big.txt"
    f.write_text("x" * 5000)
    msg = error_of(str(f), max_bytes=1000)
    assert "big.txt" in msg and "too big" in msg
    (tmp_path / "many").mkdir()
    for i in range(5):
        (tmp_path / "many" / f"{i}.txt").write_text("y" * 400)
    assert "too big" in error_of(str(tmp_path / "many"), max_bytes=1000)
    assert "too big" in error_of("-", max_bytes=10, stdin=io.BytesIO(b"z" * 11))


def test_empty_file_and_empty_stdin(tmp_path: Path):
    f = tmp_path / "empty.txt"
    f.write_text("  \n")
    assert "empty" in error_of(str(f))
    assert "empty" in error_of("-", stdin=io.BytesIO(b""))


# -- URLs ----------------------------------------------------------------------------------------
@pytest.fixture
def http_dir(tmp_path: Path):
    """A static file server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_url_html_becomes_text(http_dir):
    www, base = http_dir
    (www / "page.html").write_text(
        "<html><head><title>Fleet report</title><style>p{color:red}</style></head>"
        "<body><nav>Home</nav><h1>Tonnage</h1><script>var x = 1;</script>"
        "<p>The fleet carried <b>8,210</b> tonnes.</p></body></html>"
    )
    text = load(f"{base}/page.html").texts[f"{base}/page.html"]
    assert text == "Fleet report\n\nTonnage\nThe fleet carried 8,210 tonnes."


def test_url_plain_text_and_pdf(http_dir):
    www, base = http_dir
    (www / "a.txt").write_text("plain words")
    (www / "r.pdf").write_bytes(make_pdf(["pdf over http 5150"]))
    sources = load(f"{base}/a.txt", f"{base}/r.pdf")
    assert sources.texts[f"{base}/a.txt"] == "plain words"
    assert "5150" in sources.texts[f"{base}/r.pdf"]


def test_url_errors(http_dir):
    www, base = http_dir
    msg = error_of(f"{base}/missing.html")
    assert f"{base}/missing.html" in msg and "404" in msg
    (www / "big.txt").write_text("z" * 5000)
    assert "too big" in error_of(f"{base}/big.txt", max_bytes=1000)
    (www / "x.bin").write_bytes(b"\x00\x01\x02\x03" * 100)
    assert "binary" in error_of(f"{base}/x.bin")


def test_unreachable_url():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    msg = error_of(f"http://127.0.0.1:{port}/doc", url_timeout=5)
    assert f"127.0.0.1:{port}/doc" in msg and "cannot fetch" in msg
