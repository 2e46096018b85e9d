"""The apps depend one way, training -> feedback -> recognizer, and no module imports another
that imports it back (read from the source, every import, also those inside functions)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("recognizer", "feedback", "training", "digitsite")


def modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] in APPS}


def test_feedback_and_recognizer_never_import_training_and_recognizer_never_imports_feedback():
    wrong = []
    for name, path in modules().items():
        app = name.split(".")[0]
        for imported in imports(path, top_level_only=False):
            other = imported.split(".")[0]
            if (app in ("feedback", "recognizer") and other == "training") or (app == "recognizer" and other == "feedback"):
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_no_module_imports_one_that_imports_it_back():
    known = modules()
    graph = {name: {i for i in imports(path, top_level_only=False) if i in known and i != name} for name, path in known.items()}
    cycles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in graph[name]:
            if state.get(other) == "open":
                cycles.append(trail[trail.index(other):] + [other])
            elif other not in state:
                visit(other, trail + [other])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert cycles == []
