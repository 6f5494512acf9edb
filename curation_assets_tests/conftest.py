import ast
import contextlib
import itertools
import os
from functools import cache
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@cache
def _module_marks(path: Path) -> frozenset[str]:
    """The marks a test file sets on all its tests (``pytestmark = pytest.mark.NAME`` or a
    list of them), read from its source without importing it."""
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    marks: set[str] = set()
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        ):
            continue
        values = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
        for value in values:
            if isinstance(value, ast.Attribute) and ast.unparse(value.value) == "pytest.mark":
                marks.add(value.attr)
    return frozenset(marks)


def _deselects_every_test(markexpr: str, marks: frozenset[str]) -> bool:
    """Whether ``-m markexpr`` deselects every test that carries ``marks``, whatever other
    marks a test adds to them."""
    from _pytest.mark.expression import Expression

    expression = Expression.compile(markexpr)
    others = sorted(expression.idents() - marks)
    for extra in itertools.product((False, True), repeat=len(others)):
        present = marks | {name for name, on in zip(others, extra, strict=True) if on}
        if expression.evaluate(present.__contains__):
            return False
    return True


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Do not even import a test file whose module marks the ``-m`` expression deselects
    (``./scripts/test --fast`` skips the integration files): every worker of a parallel run
    collects every file, and these import Dagster, torch and servers' code for nothing."""
    markexpr = config.getoption("markexpr", "")
    if (
        not markexpr
        or collection_path.suffix != ".py"
        or not collection_path.name.startswith("test_")
    ):
        return None
    marks = _module_marks(collection_path)
    if not marks:
        return None
    try:
        return True if _deselects_every_test(markexpr, marks) else None
    except Exception:  # noqa: BLE001 - an expression pytest reads differently: collect it
        return None


@pytest.fixture
def con(tmp_path):
    """A real DuckDB warehouse file under a temporary folder."""
    import duckdb

    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


@contextlib.contextmanager
def _cheap_argon2():
    from argon2 import PasswordHasher

    from curation_assets.curation.review.decisions import accounts

    def cheap() -> PasswordHasher:
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", cheap)
        patch.setattr(accounts, "_DUMMY_HASH", [])  # the unknown-user hash: not kept after
        yield


@pytest.fixture(scope="module")
def quick_password_hashes():
    """Real argon2id hashes, at the cheapest cost, for a module whose subject is the review
    app rather than the hash (the default costs ~0.5 s a sign-in on purpose;
    ``test_users_are_hashed_with_argon2`` keeps them and checks them)."""
    with _cheap_argon2():
        yield


@pytest.fixture
def quick_password_hash():
    """``quick_password_hashes`` for one test."""
    with _cheap_argon2():
        yield


@pytest.fixture(scope="session")
def support_base(tmp_path_factory) -> Path:
    """A tiny random BERT (tokenizer trained on ``make_rows`` messages) to fine-tune on the
    support-message data of the end-to-end tests: built once per worker, only read."""
    from curation_assets_tests.fixtures import make_rows
    from curation_assets_tests.tiny_models import build_tiny_classifier_base

    texts = [r["text"] for r in make_rows(40, seed=1)]
    return build_tiny_classifier_base(tmp_path_factory.mktemp("support-base"), texts)
