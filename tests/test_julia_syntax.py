"""CI's guarantee about julia/: every .jl file parses with tree-sitter's Julia grammar."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import check_julia_syntax as cjs  # noqa: E402


def test_all_julia_files_parse():
    files, problems = cjs.check_paths([ROOT / "julia"])
    names = {f.relative_to(ROOT / "julia").as_posix() for f in files}
    assert {"src/PyRxAIF.jl", "src/nodes/controlled_transition.jl", "src/nodes/goal_observation.jl",
            "src/nodes/channels.jl", "src/models/lds.jl", "src/models/tmaze.jl", "src/models/rollout.jl",
            "test/runtests.jl"} <= names
    assert problems == []


def test_checker_flags_broken_code():
    broken = "function f(x)\n    y = (x + \nend\n"
    problems = cjs.check_source(broken, "broken.jl")
    assert problems and problems[0].path == "broken.jl" and problems[0].kind == "ERROR"
    missing = cjs.check_source("f(x = 1\n")
    assert [(p.line, p.kind) for p in missing] == [(1, "MISSING )")]
    assert cjs.check_source("f(x) = x + 1\n") == []


def test_checker_flags_constraint_juxtaposition_and_accepts_product():
    bad = "@constraints begin\n    q(x, y) = q(x)q(y)\nend\n"
    good = "@constraints begin\n    q(x, y) = q(x) * q(y)\nend\n"
    assert cjs.check_source(bad) != []
    assert cjs.check_source(good) == []


def test_command_line_exit_status(tmp_path):
    (tmp_path / "bad.jl").write_text("module M\nx = [1, 2\nend\n")
    (tmp_path / "good.jl").write_text("module M\nx = [1, 2]\nend\n")
    run = lambda p: subprocess.run([sys.executable, str(ROOT / "tools" / "check_julia_syntax.py"), str(p)],
                                   capture_output=True, text=True)
    bad = run(tmp_path / "bad.jl")
    assert bad.returncode == 1 and "bad.jl:" in bad.stdout
    assert run(tmp_path / "good.jl").returncode == 0


def _readme_julia_sources():
    import re
    text = (ROOT / "README.md").read_text()
    return re.findall(r'source = """\n(.*?)"""', text, flags=re.S)


def test_readme_rxinfer_examples_parse():
    sources = _readme_julia_sources()
    assert len(sources) >= 2, "README's 'Using RxInfer from Python' examples went missing"
    for src in sources:
        assert "@model function" in src
        assert cjs.check_source(src, "README.md") == []
