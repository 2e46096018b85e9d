"""The apps depend one way, training -> feedback -> recognizer, and no module imports another
that imports it back (read from the source, every import, also those inside functions). Product
code never imports bench or tools; training's torch core (training.nn) imports no Django, and
what the admin reads (training.runs, training.admin) imports no torch. feedback and recognizer
do not reach training through the ORM either: no reverse relation, no lookup naming it."""

import ast
import re
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
APPS = ("recognizer", "feedback", "training", "digitsite")
OUTSIDE = ("bench", "tools", "testing")  # benchmarks, one-off scripts, the tests' shared helpers


def modules(*, roots: tuple[str, ...] = APPS, tests: bool = False) -> dict[str, Path]:
    found = {}
    for app in roots:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if (("tests" in parts) != tests and not (tests and path.name == "conftest.py")) or "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, *, top_level_only: bool = False, within: tuple[str, ...] = APPS) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] in within} if within else names


def test_feedback_and_recognizer_never_import_training_and_recognizer_never_imports_feedback():
    wrong = []
    for name, path in modules().items():
        app = name.split(".")[0]
        for imported in imports(path):
            other = imported.split(".")[0]
            if (app in ("feedback", "recognizer") and other == "training") or (app == "recognizer" and other == "feedback"):
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_feedback_and_recognizer_never_reach_training_through_the_orm():
    # A relation from a training model to theirs is declared without a reverse accessor ("+"),
    # so no Sample or ModelVersion has a manager or lookup leading into training ...
    wrong = []
    for app in ("feedback", "recognizer"):
        for model in apps.get_app_config(app).get_models():
            for field in model._meta.get_fields():
                if field.related_model is not None and field.related_model._meta.app_label == "training":
                    wrong.append(f"{model.__name__}.{field.name} leads to {field.related_model.__name__}")
    # ... and their code names none: no related name, no lookup or attribute of training's.
    naming = re.compile(r"\btraining_\w+|\btrainingrun\w*|\bTrainingRun\b")
    for name, path in modules(roots=("feedback", "recognizer")).items():
        wrong += [f"{name} names {found}" for found in naming.findall(path.read_text())]
    assert wrong == []


def test_product_code_never_imports_bench_tools_or_the_tests_helpers():
    wrong = [f"{name} imports {imported}" for name, path in modules().items() for imported in imports(path, within=OUTSIDE)]
    assert wrong == []


def test_the_tests_never_import_bench():
    tests = {**modules(tests=True), "conftest": ROOT / "conftest.py"}
    wrong = [f"{name} imports {imported}" for name, path in tests.items() for imported in imports(path, within=("bench",))]
    assert wrong == []


def test_trainings_torch_core_imports_no_django_nor_anything_that_does():
    known = modules()
    wrong = []
    for name in [n for n in known if n.startswith("training.nn")]:
        seen, todo = set(), [name]
        while todo:  # every project module it imports, and theirs
            current = todo.pop()
            seen.add(current)
            for imported in imports(known[current], within=()):
                if imported.split(".")[0] in ("django", "rest_framework") or imported.startswith(("training.steps", "training.runs", "training.admin")):
                    wrong.append(f"{name} reaches {imported} (through {current})")
                module = next((m for m in (imported, imported.rpartition(".")[0]) if m in known), None)
                if module and module not in seen:
                    todo.append(module)
    assert wrong == []


def test_what_the_admin_reads_imports_no_torch_and_no_training_step():
    wrong = []
    for name, path in modules(roots=("training",)).items():
        if name.startswith(("training.runs", "training.admin")):
            for imported in imports(path, within=()):
                if imported.split(".")[0] in ("torch", "torchvision") or imported.startswith(("training.nn", "training.steps")):
                    wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_no_module_imports_one_that_imports_it_back():
    known = modules()
    graph = {name: {i for i in imports(path) if i in known and i != name} for name, path in known.items()}
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
