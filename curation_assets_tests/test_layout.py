"""The layout holds: the curation core imports no Dagster and nothing of the Dagster
layer, the stage packages import only what their docstrings allow, no import cycles, and
every package says what it holds."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "curation_assets"
CORE = PACKAGE / "curation"
#: The one core module that talks to Dagster: the script Dagster launches through Pipes.
PIPES_SCRIPT = CORE / "training" / "pipes_train.py"
#: Core stage -> the other core stages it may import (the shared modules are always allowed).
ALLOWED_STAGES = {
    "ingest": set(),
    "filtering": {"ingest"},
    "review": {"filtering", "ingest"},
    "training": set(),
    "evaluation": {"review", "training"},
    "lineage": {"ingest", "filtering", "review", "training"},  # it reads every stage's tables
    "export": {"review"},  # the declaration of verified
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (``from pkg import
    module`` counts as importing ``pkg.module``, not ``pkg``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            modules = {s for s in submodules if _is_module(s)}
            found |= modules or {node.module}
            if len(modules) < len(submodules):
                found.add(node.module)
    return found


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "sample_data" not in p.parts)


def test_the_curation_core_imports_no_dagster_and_no_dagster_layer():
    offenders = []
    for path in _sources(CORE):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "dagster" or (top.startswith("dagster_") and top != "dagster_pipes"):
                offenders.append(f"{path.relative_to(PACKAGE)}: {name}")
            if top == "dagster_pipes" and path != PIPES_SCRIPT:
                offenders.append(f"{path.relative_to(PACKAGE)}: {name}")
            if name.startswith(
                ("curation_assets.defs", "curation_assets.runs", "curation_assets.cli")
            ) or name in ("curation_assets.definitions", "curation_assets.review_app"):
                offenders.append(f"{path.relative_to(PACKAGE)}: {name}")
    assert offenders == []


@pytest.mark.parametrize("stage", sorted(ALLOWED_STAGES))
def test_each_core_stage_imports_only_the_stages_it_builds_on(stage):
    allowed = ALLOWED_STAGES[stage] | {stage}
    reached = set()
    for path in _sources(CORE / stage):
        for name in _imports(path):
            parts = name.split(".")
            in_core = parts[:2] == ["curation_assets", "curation"] and len(parts) > 2
            if in_core and (CORE / parts[2]).is_dir():
                reached.add(parts[2])
    assert reached <= allowed, f"{stage} imports {sorted(reached - allowed)}"


def test_no_import_cycles():
    modules = {_module_name(p): p for p in _sources(PACKAGE)}
    graph = {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_every_package_says_what_it_holds():
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if "sample_data" in init.parts:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 8, init.relative_to(PACKAGE)


def test_every_declaration_file_ships_in_the_wheel():
    """Table declarations and the stage folders' defs.yaml are read at run time: the
    package-data globs of pyproject.toml must cover each, or an installed wheel breaks."""
    import tomllib

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["curation_assets"]
    shipped = {p for pattern in globs for p in PACKAGE.glob(pattern)}
    needed = set(PACKAGE.rglob("*.yaml"))
    assert len(needed) >= 13 and needed <= shipped, sorted(map(str, needed - shipped))
