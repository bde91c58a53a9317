"""The curated public face: ``import pyrxaif as rx`` gives the model layer, the agent, the envs and
``rx.infer``; every public object documents itself with a runnable numpydoc example, which runs here;
importing pyrxaif neither starts Julia nor imports juliacall."""

import doctest
import subprocess
import sys

import pytest

import pyrxaif as rx

PUBLIC = [name for name in rx.__all__ if name != "__version__"]


def test_public_names_resolve_to_documented_objects():
    assert {"DiscretePOMDP", "Agent", "LinearGaussianSSM", "infer", "TMaze", "EpistemicFrozenLake", "RockSample",
            "WumpusWorld", "PixelPendulum", "RotatingDigits"} <= set(PUBLIC)
    for name in PUBLIC:
        obj = getattr(rx, name)
        assert "Examples\n    --------" in (obj.__doc__ or ""), f"rx.{name} has no numpydoc Examples section"
    with pytest.raises(AttributeError, match="no attribute 'GridworldAgent'"):
        rx.GridworldAgent  # noqa: B018


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_example_runs(name):
    obj = getattr(rx, name)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(obj, name, globs={}) if t.examples]
    assert tests, f"rx.{name}: no runnable example"
    for t in tests:
        runner.run(t)
    assert runner.failures == 0, f"rx.{name}: {runner.failures} failing example(s)"


def test_import_is_light_and_never_starts_julia():
    code = ("import sys, pyrxaif as rx; rx.DiscretePOMDP; rx.Agent; rx.LinearGaussianSSM; rx.infer; "
            "print('juliacall' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_no_private_name_is_imported_across_modules():
    """Private helpers stay private to their module: no ``from pyrxaif.x import _y``, no ``import
    pyrxaif._x``, no private module of pyrxaif imported elsewhere (``_julia`` is package data)."""
    import ast
    from pathlib import Path

    root = Path(rx.__file__).resolve().parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pyrxaif"):
                parts = node.module.split(".") + [a.name for a in node.names]
                names = [p for p in parts if p.startswith("_") and not p.startswith("__")]
            elif isinstance(node, ast.Import):
                names = [p for a in node.names if a.name.startswith("pyrxaif") for p in a.name.split(".")
                         if p.startswith("_") and not p.startswith("__")]
            else:
                continue
            if names:
                offenders.append(f"{path.relative_to(root.parent)}:{node.lineno}: {', '.join(names)}")
    assert offenders == []
