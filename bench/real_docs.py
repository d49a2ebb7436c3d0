"""Questions over real documents nobody on this project wrote: files shipped by Debian and PyPI
packages on this machine. Every gold answer is computed here by code from the document's text,
never typed by hand; each document is pinned by package version and SHA-256, so the answers
stay right (a different version is refused, not silently rescored).

Documents (`DOCUMENTS`): apt's Debian changelog, coreutils' NEWS, the libtasn1 manual (a PDF,
turned into text by the project's own PDF loader, as a user's `--source` would be) and the
PyYAML package's source tree (one file after another under `=== yaml/<file> ===` headers, as
`context` joins several sources).

Families: `lookup` (one fact), `count` (how many of something), `sum` (a total over several
sections), `section` (which section holds a line), `twohop` (find a thing, then a fact about
what it points to). The split (`split_of`) holds out half of the questions: documents 0 and 2
for odd families, 1 and 3 for even ones, so every family and every document has both halves.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.metadata
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rlm_research.bench.dates import dates_in
from rlm_research.bench.tasks import Task, count_score, exact_match

FAMILIES = ("lookup", "count", "sum", "section", "twohop")


@dataclass(frozen=True)
class Question:
    family: str
    text: str
    gold: str | int


@dataclass(frozen=True)
class Document:
    name: str
    package: str  # "deb:apt" or "pypi:PyYAML"
    version: str  # the pinned package version
    sha256: str  # of the text given to the model
    read: Callable[[], str]
    questions: Callable[[str], list[Question]]  # in FAMILIES order


class DocumentDrift(RuntimeError):
    """The installed package is another version, or the text is not the pinned one."""


def installed_version(package: str) -> str | None:
    kind, name = package.split(":", 1)
    if kind == "pypi":
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None


# ---------------------------------------------------------------------------------------------
# apt's Debian changelog


def read_apt() -> str:
    return gzip.decompress(Path("/usr/share/doc/apt/changelog.gz").read_bytes()).decode()


def changelog_entries(text: str) -> list[dict[str, object]]:
    """Debian changelog entries: version, body lines, who signed it and on what day."""
    entries: list[dict[str, object]] = []
    for line in text.splitlines():
        head = re.match(r"^\S+ \(([^)]+)\) [^;]+; urgency=", line)
        if head:
            entries.append({"version": head.group(1), "lines": [], "by": "", "date": ""})
        elif entries:
            sign = re.match(r"^ -- (.+?) <.*>\s+\w+, (\d+ \w+ \d{4})", line)
            if sign and not entries[-1]["by"]:
                entries[-1]["by"], entries[-1]["date"] = sign.group(1).strip(), sign.group(2)
            else:
                entries[-1]["lines"].append(line)  # type: ignore[union-attr]
    return entries


def unique_bullet(text: str, entry: dict[str, object]) -> str:
    """The first change line of an entry whose words occur once in the whole changelog."""
    for line in entry["lines"]:  # type: ignore[union-attr]
        item = line.strip().removeprefix("* ").removeprefix("- ").strip()
        bullet = line.strip().startswith(("* ", "- ")) and 25 <= len(item) <= 90
        if bullet and text.count(item) == 1 and "(Closes" not in item:
            return item
    raise ValueError(f"no unique change line in {entry['version']}")


def closes(entry: dict[str, object]) -> int:
    body = "\n".join(entry["lines"])  # type: ignore[arg-type]
    return sum(len(re.findall(r"#\d+", m)) for m in re.findall(r"Closes:[^)]*", body))


def apt_questions(text: str) -> list[Question]:
    entries = changelog_entries(text)
    by_version = {e["version"]: e for e in entries}
    e253 = by_version["2.5.3"]
    five = [e for e in entries if str(e["version"]).startswith("2.5.")]
    line = unique_bullet(text, e253)
    # Two hops: the line's entry, then the date its sign-off line gives.
    other_entry = by_version["2.5.0"]
    other = unique_bullet(text, other_entry)
    return [
        Question("lookup", "Who signed the upload of apt version 2.5.3?", str(e253["by"])),
        Question("count", "How many versions of apt does this changelog describe?", len(entries)),
        Question(
            "sum",
            "In total, how many bug numbers do the 'Closes:' notes of all apt 2.5.x versions "
            "(2.5.0 to 2.5.6) close?",
            sum(closes(e) for e in five),
        ),
        Question("section", f"Which apt version's entry lists the change '{line}'?", "2.5.3"),
        Question(
            "twohop",
            f"On what date was the apt version uploaded whose entry lists the change '{other}'?",
            str(other_entry["date"]),
        ),
    ]


# ---------------------------------------------------------------------------------------------
# coreutils' NEWS


def read_coreutils() -> str:
    return gzip.decompress(Path("/usr/share/doc/coreutils/NEWS.gz").read_bytes()).decode()


# Releases before 6.6 head their notes "Major changes in release ..." (with a colon after the
# date up to 5.1): the count question counts both, 77 releases.
_RELEASE = re.compile(r"^\* (?:Noteworthy|Major) changes in release (\S+) \((\S+)\)", re.M)


def news_releases(text: str) -> list[tuple[str, str, str]]:
    """(version, date, body) per release, newest first."""
    marks = list(_RELEASE.finditer(text))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append((m.group(1), m.group(2), text[m.end() : end]))
    return out


def coreutils_questions(text: str) -> list[Question]:
    releases = news_releases(text)
    by_version = {v: (d, body) for v, d, body in releases}
    bugs = {v: body.count("[bug introduced") for v, _, body in releases}

    def unique_sentence(version: str) -> str:
        """A whole line of the release's notes that occurs once in the file (one line, so a
        search for it can match)."""
        for line in by_version[version][1].splitlines():
            words = line.strip()
            if 35 <= len(words) <= 75 and text.count(words) == 1 and words[0].isalpha():
                return words
        raise ValueError(version)

    return [
        Question("lookup", "On what date was coreutils release 8.30 made?", by_version["8.30"][0]),
        Question("count", "How many releases does this NEWS file describe?", len(releases)),
        Question(
            "sum",
            "How many '[bug introduced ...]' notes do releases 9.0 and 9.1 have together?",
            bugs["9.0"] + bugs["9.1"],
        ),
        Question(
            "section",
            f"Which coreutils release's notes contain the text '{unique_sentence('8.29')}'?",
            "8.29",
        ),
        Question(
            "twohop",
            f"On what date was the coreutils release made whose notes contain the text "
            f"'{unique_sentence('8.26')}'?",
            by_version["8.26"][0],
        ),
    ]


# ---------------------------------------------------------------------------------------------
# The libtasn1 manual (PDF)


def read_libtasn1() -> str:
    from rlm_research.tools.sources import pdf_to_text

    data = Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf").read_bytes()
    return pdf_to_text(data, "libtasn1.pdf")


def manual_functions(text: str) -> list[dict[str, object]]:
    """[Function] entries in order: return type, name, parameter count, line index."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.startswith("[Function]"):
            continue
        sig = line
        k = i
        while ")" not in sig and k + 1 < len(lines):
            k += 1
            sig += " " + lines[k]
        m = re.match(r"\[Function\](.+?)\s*\b(asn1_\w+) \((.*?)\)", sig)
        if m:
            params = [p for p in m.group(3).split(",") if p.strip() and p.strip() != "void"]
            out.append({"type": m.group(1).strip(), "name": m.group(2), "params": len(params)})
            out[-1]["line"] = i
    return out


def libtasn1_questions(text: str) -> list[Question]:
    funcs = manual_functions(text)
    by_name = {f["name"]: f for f in funcs}
    lines = text.splitlines()
    perror = by_name["asn1_perror"]
    section = next(
        m.group(1)
        for k in range(int(perror["line"]), -1, -1)  # type: ignore[call-overload]
        if (m := re.match(r"^(\d+\.\d+) [A-Z]", lines[k]))
    )
    after = funcs[funcs.index(by_name["asn1_read_value"]) + 1]
    return [
        Question(
            "lookup",
            "What is the return type of the function asn1_find_structure_from_oid?",
            str(by_name["asn1_find_structure_from_oid"]["type"]),
        ),
        Question(
            "count",
            "How many functions does the manual document with a [Function] entry?",
            len(funcs),
        ),
        Question(
            "sum",
            "How many parameters do asn1_read_value and asn1_write_value take together?",
            int(by_name["asn1_read_value"]["params"]) + int(by_name["asn1_write_value"]["params"]),  # type: ignore[call-overload]
        ),
        Question(
            "section",
            "Under which numbered section of the manual (like 2.3) is asn1_perror documented?",
            section,
        ),
        Question(
            "twohop",
            "How many parameters does the function documented right after asn1_read_value take?",
            after["params"],  # type: ignore[arg-type]
        ),
    ]


# ---------------------------------------------------------------------------------------------
# PyYAML's source tree


def read_pyyaml() -> str:
    import yaml

    root = Path(yaml.__file__).parent
    parts = [
        f"=== yaml/{p.name} ===\n{p.read_text(encoding='utf-8')}" for p in sorted(root.glob("*.py"))
    ]
    return "\n\n".join(parts)


def source_files(text: str) -> dict[str, ast.Module]:
    pieces = re.split(r"^=== (yaml/\S+) ===\n", text, flags=re.M)
    return {pieces[i]: ast.parse(pieces[i + 1]) for i in range(1, len(pieces), 2)}


def pyyaml_questions(text: str) -> list[Question]:
    files = source_files(text)
    classes = {
        c.name: (path, c)
        for path, tree in files.items()
        for c in tree.body
        if isinstance(c, ast.ClassDef)
    }

    def top_functions(path: str) -> int:
        return sum(isinstance(n, ast.FunctionDef) for n in files[path].body)

    dump = next(
        n
        for n in files["yaml/__init__.py"].body
        if isinstance(n, ast.FunctionDef) and n.name == "dump_all"
    )
    names = [a.arg for a in dump.args.args]
    default = dump.args.defaults[names.index("width") - (len(names) - len(dump.args.defaults))]
    base = classes["SafeConstructor"][1].bases[0]
    return [
        Question(
            "lookup",
            "In PyYAML's source, what is the default value of the width parameter of dump_all?",
            ast.unparse(default),
        ),
        Question(
            "count",
            "How many classes are defined at the top level of yaml/constructor.py?",
            sum(isinstance(n, ast.ClassDef) for n in files["yaml/constructor.py"].body),
        ),
        Question(
            "sum",
            "How many top-level functions do yaml/__init__.py and yaml/cyaml.py define together?",
            top_functions("yaml/__init__.py") + top_functions("yaml/cyaml.py"),
        ),
        Question(
            "section",
            "In which file is the class ScannerError defined?",
            classes["ScannerError"][0],
        ),
        Question(
            "twohop",
            "SafeConstructor inherits from one class. In which file is that class defined?",
            classes[ast.unparse(base)][0],
        ),
    ]


DOCUMENTS = (
    Document(
        "apt-changelog",
        "deb:apt",
        "2.6.1",
        "eacefaa339315e12a5943e402fbdf6561f4ffdfa5c7dcf9f9d4126730cb73ae3",
        read_apt,
        apt_questions,
    ),
    Document(
        "coreutils-news",
        "deb:coreutils",
        "9.1-1",
        "30906e0af8cbdd3e7ae60f7985416ca85600edff98a00f7967af091f3b81949c",
        read_coreutils,
        coreutils_questions,
    ),
    Document(
        "libtasn1-manual",
        "deb:libtasn1-doc",
        "4.19.0-2+deb12u1",
        # The text's hash also pins what pypdf makes of the PDF.
        "c85c4cbedea90730abca001ed3ac2a40a53058d9e7c64f357410c600deb9a274",
        read_libtasn1,
        libtasn1_questions,
    ),
    Document(
        "pyyaml-source",
        "pypi:PyYAML",
        "6.0.4",
        "066969f2928dfcb0859e21598de44df40a98daa8e38d8478634e0faceb34534c",
        read_pyyaml,
        pyyaml_questions,
    ),
)


@cache
def document_text(name: str) -> str:
    """The pinned text of a document; raises DocumentDrift if the package or text differ."""
    doc = next(d for d in DOCUMENTS if d.name == name)
    have = installed_version(doc.package)
    if have != doc.version:
        raise DocumentDrift(f"{doc.name}: {doc.package} is {have}, the questions pin {doc.version}")
    text = doc.read()
    digest = hashlib.sha256(text.encode()).hexdigest()
    if doc.sha256 and digest != doc.sha256:
        raise DocumentDrift(f"{doc.name}: text sha256 {digest[:12]}, pinned {doc.sha256[:12]}")
    return text


def split_of(doc_index: int, family: str) -> str:
    """`dev` or `held_out`: the one place the real-document split is decided."""
    return "held_out" if (doc_index + FAMILIES.index(family)) % 2 == 1 else "dev"


class RealTask(Task):
    @property
    def id(self) -> str:
        return f"real:{self.meta['doc']}:{self.family}"


def scorer_for(gold: str | int) -> Callable[[str], float]:
    """Counts and sums score 0.75^|error| (as the generated counts do); a date matches the same
    date written another way ("2022-05-17" for "17 May 2022"); the rest exact match."""
    if isinstance(gold, int):
        return lambda answer: count_score(answer, gold)
    day = dates_in(gold)
    if len(day) == 1:
        return lambda answer: max(exact_match(answer, gold), float(dates_in(answer) == day))
    return lambda answer: exact_match(answer, gold)


def real_tasks(split: str = "all") -> list[RealTask]:
    out = []
    for i, doc in enumerate(DOCUMENTS):
        text = document_text(doc.name)
        for q in doc.questions(text):
            where = split_of(i, q.family)
            if split not in ("all", where):
                continue
            meta = {"doc": doc.name, "split": where, "package": doc.package, "version": doc.version}
            out.append(
                RealTask(q.family, len(text), i, q.text, text, q.gold, scorer_for(q.gold), meta)
            )
    return out
