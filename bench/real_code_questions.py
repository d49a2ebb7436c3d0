"""Questions over a PDF manual and Python source trees nobody on this project wrote: the
libtasn1 manual (turned into text by the project's own PDF loader, as a user's `--source`
would be), and PyYAML's and attrs' packages (one file after another under `=== <dir>/<file> ===`
headers, as `context` joins several sources). Gold answers are computed by code."""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from rlm_research.bench.real_questions import Question
from rlm_research.tools.text_search import join_sources

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
# Python source trees: PyYAML's and attrs'


def read_tree(package: str) -> str:
    """A package's modules, one after another under `=== <package>/<file> ===` headers, as
    `context` joins several sources."""
    root = Path(importlib.util.find_spec(package).origin).parent  # type: ignore[union-attr,arg-type]
    files = sorted(root.glob("*.py"))
    return join_sources({f"{package}/{p.name}": p.read_text(encoding="utf-8") for p in files})


def source_files(text: str) -> dict[str, ast.Module]:
    pieces = re.split(r"^=== (\w+/\S+) ===\n", text, flags=re.M)
    return {pieces[i]: ast.parse(pieces[i + 1]) for i in range(1, len(pieces), 2)}


@dataclass(frozen=True)
class TreePicks:
    """What a source tree's five questions are about."""

    owner: str  # "PyYAML's"
    lookup: tuple[str, str, str]  # file, function, parameter: its default value
    count_file: str  # how many top-level classes
    sum_files: tuple[str, str]  # how many top-level functions, together
    section_class: str  # which file defines it
    twohop_class: str  # which file defines its one base class


def default_of(tree: ast.Module, function: str, parameter: str) -> str:
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    args = fn.args
    plain = [a.arg for a in args.posonlyargs + args.args]
    if parameter in plain:
        first_default = len(plain) - len(args.defaults)
        return ast.unparse(args.defaults[plain.index(parameter) - first_default])
    k = [a.arg for a in args.kwonlyargs].index(parameter)
    return ast.unparse(args.kw_defaults[k])  # type: ignore[arg-type]


def tree_questions(text: str, picks: TreePicks) -> list[Question]:
    files = source_files(text)
    classes = {
        c.name: (path, c)
        for path, tree in files.items()
        for c in tree.body
        if isinstance(c, ast.ClassDef)
    }

    def top(path: str, kind: type) -> int:
        return sum(isinstance(n, kind) for n in files[path].body)

    path, function, parameter = picks.lookup
    base = classes[picks.twohop_class][1].bases[0]
    one, two = picks.sum_files
    return [
        Question(
            "lookup",
            f"In {picks.owner} source, what is the default value of the {parameter} parameter "
            f"of {function}?",
            default_of(files[path], function, parameter),
        ),
        Question(
            "count",
            f"How many classes are defined at the top level of {picks.count_file}?",
            top(picks.count_file, ast.ClassDef),
        ),
        Question(
            "sum",
            f"How many top-level functions do {one} and {two} define together?",
            top(one, ast.FunctionDef) + top(two, ast.FunctionDef),
        ),
        Question(
            "section",
            f"In which file is the class {picks.section_class} defined?",
            classes[picks.section_class][0],
        ),
        Question(
            "twohop",
            f"{picks.twohop_class} inherits from one class. In which file is that class defined?",
            classes[ast.unparse(base)][0],
        ),
    ]


PYYAML = TreePicks(
    "PyYAML's",
    ("yaml/__init__.py", "dump_all", "width"),
    "yaml/constructor.py",
    ("yaml/__init__.py", "yaml/cyaml.py"),
    "ScannerError",
    "SafeConstructor",
)


ATTRS = TreePicks(
    "the attrs package's",
    ("attr/validators.py", "matches_re", "flags"),
    "attr/validators.py",
    ("attr/filters.py", "attr/converters.py"),
    "ClassProps",
    "FrozenAttributeError",
)


# Added in session 25 after that session's loop changes (h11: httpx's HTTP/1.1 parser); its
# held-out questions were first run on a frozen loop.
H11 = TreePicks(
    "h11's",
    ("h11/_util.py", "validate", "msg"),
    "h11/_state.py",
    ("h11/_readers.py", "h11/_writers.py"),
    "ReceiveBuffer",
    "NEED_DATA",
)


# Added in session 27, before any run over them: tenacity (a retry library) and Starlette (an
# ASGI web framework), two code bases of another shape than the three above (many small classes
# per file). Their held-out questions were first run on a frozen loop.
TENACITY = TreePicks(
    "tenacity's",
    ("tenacity/after.py", "after_log", "sec_format"),
    "tenacity/stop.py",
    ("tenacity/_utils.py", "tenacity/before_sleep.py"),
    "wait_random_exponential",
    "TornadoRetrying",
)
STARLETTE = TreePicks(
    "Starlette's",
    ("starlette/authentication.py", "requires", "status_code"),
    "starlette/convertors.py",
    ("starlette/_utils.py", "starlette/routing.py"),
    "CommaSeparatedStrings",
    "NotModifiedResponse",
)
