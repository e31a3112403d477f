"""Every third-party module app/ imports, at the top of a module or late (an optional extra), comes from a
distribution that pyproject.toml declares: a dependency or one of the extras."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return normalized(match.group(0))


def declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {requirement_name(requirement) for requirement in requirements}


def imported_top_level_modules() -> dict[str, str]:
    """Top-level module name -> the first file of app/ that imports it (absolute imports only)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def third_party(modules: dict[str, str]) -> dict[str, str]:
    return {name: where for name, where in modules.items() if name != "app" and name not in sys.stdlib_module_names}


def test_every_third_party_import_is_declared() -> None:
    distributions = packages_distributions()
    declared = declared_distributions()
    undeclared = []
    for module, where in sorted(third_party(imported_top_level_modules()).items()):
        providers = {normalized(name) for name in distributions.get(module, [])}
        assert providers, f"{module} (imported by {where}) is not installed: `make test` installs every extra"
        if not providers & declared:
            undeclared.append(f"{module} ({where}) comes from {sorted(providers)}")
    assert undeclared == [], "declare these in pyproject.toml's dependencies or an extra"


def test_the_check_sees_late_imports_of_optional_extras() -> None:
    modules = third_party(imported_top_level_modules())
    assert {"torchattacks", "sklearn", "ray"} <= set(modules)
