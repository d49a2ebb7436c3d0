"""Questions over real documents nobody on this project wrote: files shipped by Debian and PyPI
packages on this machine. Every gold answer is computed here by code from the document's text,
never typed by hand; each document is pinned by package version and SHA-256, so the answers
stay right (a different version is refused, not silently rescored).

Documents (`DOCUMENTS`; their questions in real_questions.py and real_code_questions.py):
apt's Debian changelog, coreutils' NEWS, the libtasn1 manual (a PDF), the PyYAML package's
source tree, and, added in session 19 after the loop's changes of that session were made,
GnuPG's NEWS and the attrs package's source tree; in session 25, the same way, GNU grep's NEWS
and the h11 package's source tree; in session 27, the tenacity and Starlette source trees.
Their held-out questions were first run once, on a frozen loop, so they are the set's
untouched part.

Families: `lookup` (one fact), `count` (how many of something), `sum` (a total over several
sections), `section` (which section holds a line), `twohop` (find a thing, then a fact about
what it points to). The split (`split_of`) holds out half of the questions: even documents' odd
families and odd documents' even ones, so every family and every document has both halves.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

from rlm_research.bench.real_code_questions import (
    ATTRS,
    H11,
    PYYAML,
    STARLETTE,
    TENACITY,
    libtasn1_questions,
    read_libtasn1,
    read_tree,
    tree_questions,
)
from rlm_research.bench.real_questions import (
    FAMILIES,
    Question,
    apt_questions,
    coreutils_questions,
    gnupg_questions,
    grep_questions,
    read_apt,
    read_coreutils,
    read_gnupg,
    read_grep,
)
from rlm_research.bench.tasks import Task, count_score, exact_match
from rlm_research.tools.calendar_dates import dates_in

__all__ = ["DOCUMENTS", "FAMILIES", "Question", "DocumentDrift", "real_tasks", "split_of"]


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
        partial(read_tree, "yaml"),
        partial(tree_questions, picks=PYYAML),
    ),
    Document(
        "gnupg-news",
        "deb:gnupg",
        "2.2.40-1.1+deb12u2",
        "469f73ee54950716f53dce433ad17a4ccc67fe1b00c8038f7df4e28d672116eb",
        read_gnupg,
        gnupg_questions,
    ),
    Document(
        "attrs-source",
        "pypi:attrs",
        "26.1.0",
        "865afdb82ebdaf852c43cf35af4295b666ee8f6af4c264fdb702be2791b00f41",
        partial(read_tree, "attr"),
        partial(tree_questions, picks=ATTRS),
    ),
    Document(
        "grep-news",
        "deb:grep",
        "3.8-5",
        "76bf3b647f4793c3a964773239724dda2e9368a63881e6c19170661d8d281d10",
        read_grep,
        grep_questions,
    ),
    Document(
        "h11-source",
        "pypi:h11",
        "0.16.0",
        "ff41fb8b3007731350e817330f255331915f17f658eb64c6f7f6fd53599814fe",
        partial(read_tree, "h11"),
        partial(tree_questions, picks=H11),
    ),
    Document(
        "tenacity-source",
        "pypi:tenacity",
        "9.2.1",
        "71e4d6cffb63148a25b4d8222f03f9889a4c6e1e40287c19d58217c15c812a47",
        partial(read_tree, "tenacity"),
        partial(tree_questions, picks=TENACITY),
    ),
    Document(
        "starlette-source",
        "pypi:starlette",
        "1.10.0",
        "325bf9c7651ac229b8f8f549aa938a1e04934d827d3cb36efa3f4e6d9d22df0d",
        partial(read_tree, "starlette"),
        partial(tree_questions, picks=STARLETTE),
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


def real_tasks(split: str = "all", docs: list[str] | None = None) -> list[RealTask]:
    """The questions of `split`, of the named `docs` only if given (the others are not read,
    so a drifted document does not stop a run over the rest)."""
    out = []
    for i, doc in enumerate(DOCUMENTS):
        if docs and doc.name not in docs:
            continue
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
