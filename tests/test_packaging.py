"""Every package folder of the checkout is listed for the wheel: a subpackage missing from
pyproject's `packages` imports fine here and breaks only once installed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_in_the_wheel():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    folders = {name: Path(folder) for name, folder in tool["package-dir"].items()}
    missing = []
    for name, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            package = ".".join((name, *parts))
            if package not in listed:
                missing.append(package)
    assert missing == [], f"add to [tool.setuptools] packages: {missing}"
