"""Architecture rules that can be checked mechanically."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"


def test_web_api_game_stats_and_db_do_not_load_torch() -> None:
    """Only the model service runs torch; the rest must import without it so the web tier can talk to a remote
    model service without carrying torch."""
    code = (
        "import sys\n"
        "import app.web.routes, app.api.routes, app.game.rounds, app.stats.export, app.db, app.main\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr


def test_torch_is_imported_only_under_app_ml() -> None:
    offenders = []
    for path in APP.rglob("*.py"):
        if path.is_relative_to(APP / "ml"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "torch" or name.startswith("torch.") for name in names):
                offenders.append(f"{path.relative_to(APP)}:{node.lineno}")
    assert offenders == []


def test_game_and_stats_know_nothing_of_http() -> None:
    for folder in ("game", "stats"):
        for path in (APP / folder).rglob("*.py"):
            text = path.read_text()
            assert "fastapi" not in text and "starlette" not in text, path


def test_the_web_tier_does_not_load_matplotlib_at_start_up() -> None:
    """Charts are drawn on demand: importing the app must not pay for matplotlib."""
    code = "import sys\nimport app.main, app.web.events, app.stats.events\nprint('matplotlib' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr


# -- the import graph ---------------------------------------------------------------------------------------------

ROOT = APP.parent
MAX_MODULE_LINES = 400
SQL_CALLS = ("select(", "session.execute(", "session.scalar(", "session.scalars(", ".commit()", ".rollback()")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(path): path for path in APP.rglob("*.py")}


def imported_target(importer: str, path: Path, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module
    package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def app_imports(importer: str, path: Path) -> list[tuple[str, str, int]]:
    """(module, imported name or "", line) for every import of app code, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name.split(".")[0] == "app"]
        elif isinstance(node, ast.ImportFrom):
            target = imported_target(importer, path, node)
            if target and target.split(".")[0] == "app":
                found += [(target, alias.name, node.lineno) for alias in node.names]
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for importer, path in MODULES.items():
        for target, name, _ in app_imports(importer, path):
            submodule = f"{target}.{name}"
            if submodule in MODULES:
                graph[importer].add(submodule)
            elif target in MODULES:
                graph[importer].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module are import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_app_has_no_import_cycle() -> None:
    """Counting imports inside functions too: a cycle dodged by a late import is still a cycle."""
    assert strongly_connected(import_graph()) == []


def test_no_private_name_is_imported_from_another_module() -> None:
    offenders = [
        f"{importer}:{line} imports {target}.{name}"
        for importer, path in MODULES.items()
        for target, name, line in app_imports(importer, path)
        if name.startswith("_") and not name.startswith("__")
    ]
    assert offenders == []


def test_no_module_in_app_is_over_400_lines() -> None:
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_web_and_api_run_no_sql_and_commit_nothing() -> None:
    """Routes are thin: the game and db layers own queries and the transaction."""
    offenders = []
    for folder in ("web", "api"):
        for path in (APP / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                database_get = "session.get(" in line.replace("request.session.get(", "")
                if database_get or any(call in line for call in SQL_CALLS):
                    offenders.append(f"{path.relative_to(APP)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_layers_import_only_downwards() -> None:
    """game/stats/db know nothing of the web; ml knows nothing of the game, the web or stats; modelsvc is reached
    from the app, never the reverse."""
    forbidden = {
        "app.game": ("app.web", "app.api", "app.cli", "app.main"),
        "app.stats": ("app.web", "app.api", "app.cli", "app.main"),
        "app.db": ("app.web", "app.api", "app.game", "app.stats", "app.ml", "app.cli", "app.main"),
        "app.ml": ("app.web", "app.api", "app.game", "app.stats", "app.db", "app.modelsvc", "app.cli", "app.main"),
        "app.modelsvc": ("app.web", "app.api", "app.game", "app.stats", "app.cli", "app.main"),
    }
    offenders = []
    for importer, path in MODULES.items():
        for layer, banned in forbidden.items():
            if importer == layer or importer.startswith(layer + "."):
                offenders += [
                    f"{importer}:{line} imports {target}"
                    for target, _, line in app_imports(importer, path)
                    if any(target == b or target.startswith(b + ".") for b in banned)
                ]
    assert offenders == []
