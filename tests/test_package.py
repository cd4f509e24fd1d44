"""The package's face: ``__all__``, the version, module names."""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import xpnet

ROOT = Path(__file__).parents[1]


def _isort_style(name: str) -> tuple[int, str]:
    """ruff's RUF022 order (lint enforces it in every module): CONSTANTS, Classes, rest."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_is_sorted_and_every_name_imports():
    assert xpnet.__all__ == sorted(xpnet.__all__, key=_isort_style)
    assert xpnet.__all__.index("BACKENDS") < xpnet.__all__.index("AdaGrad")  # CONSTANTS first
    assert len(set(xpnet.__all__)) == len(xpnet.__all__)
    namespace: dict = {}
    exec("from xpnet import *", namespace)
    assert set(xpnet.__all__) <= set(namespace)
    assert all(namespace[name] is getattr(xpnet, name) for name in xpnet.__all__)


def test_every_modules_all_names_exist_once():
    checked = 0
    for info in pkgutil.walk_packages(xpnet.__path__, "xpnet."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        names = getattr(importlib.import_module(info.name), "__all__", None)
        if names is None:
            continue
        checked += 1
        assert len(set(names)) == len(names), info.name
        missing = [n for n in names if not hasattr(sys.modules[info.name], n)]
        assert missing == [], f"{info.name}.__all__ names what it lacks: {missing}"
    assert checked > 50


def test_every_public_function_and_class_is_in_all():
    public = {
        name
        for name, value in vars(xpnet).items()
        if not name.startswith("_") and (callable(value) or name.isupper())
    }
    assert public == set(xpnet.__all__)


def test_version_is_declared_once():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]$', text, re.M)
    assert 'version = { attr = "xpnet._version.__version__" }' in text
    assert not re.search(r"^version = \"", text, re.M)  # no second, static copy
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", xpnet.__version__)


def test_version_matches_the_installed_metadata():
    try:
        installed = importlib.metadata.version("xpnet")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("xpnet is imported from a checkout that is not installed")
    assert installed == xpnet.__version__


def test_gradcheck_module_is_not_shadowed_by_the_function():
    from xpnet import GradcheckError, GradcheckReport, gradcheck

    module = importlib.import_module("xpnet._gradcheck")
    assert (gradcheck, GradcheckReport, GradcheckError) == (
        module.gradcheck,
        module.GradcheckReport,
        module.GradcheckError,
    )
    assert callable(xpnet.gradcheck)
    package = Path(xpnet.__file__).parent
    assert not (package / "gradcheck.py").exists() and not (package / "gradcheck").exists()


def test_no_module_is_over_450_lines():
    """One concern per module: the longest stays readable in one sitting."""
    package = Path(xpnet.__file__).parent
    lines = {p.relative_to(package).as_posix(): len(p.read_text().splitlines())
             for p in package.rglob("*.py")}  # fmt: skip
    assert len(lines) > 50
    assert {k: n for k, n in lines.items() if n > 450} == {}
