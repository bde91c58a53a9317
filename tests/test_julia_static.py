"""tools/check_julia_static.py: clean on julia/, and each finding class reported at the right
file:line when its defect is put back into a copy of julia/. No Julia needed."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import check_julia_static as cjs  # noqa: E402
import make_julia_api_index as mji  # noqa: E402


def test_checker_is_clean_on_julia():
    assert [str(f) for f in cjs.check(ROOT / "julia")] == []
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "check_julia_static.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr


def test_index_records_versions_and_current_pins():
    """The index was generated for today's pins: change julia/Project.toml or pyrxaif/juliapkg.json
    and this fails until tools/make_julia_api_index.py is run again."""
    index = cjs.load_index()
    assert index["pins"] == mji.current_pins(), "pins changed: rerun python tools/make_julia_api_index.py"
    for name, (repo, tag) in mji.PACKAGES.items():
        pkg = index["packages"][name]
        assert (pkg["repository"], pkg["tag"]) == (repo, tag) and len(pkg["commit"]) == 40
    rx = index["packages"]["RxInfer"]
    assert {"ReactiveMP", "GraphPPL", "ExponentialFamily", "BayesBase"} <= set(rx["reexports"])
    assert "free_energy" in index["infer_keywords"] and "initmarginals" not in index["infer_keywords"]
    assert {"meta", "dependencies"} <= set(index["where_keys"])
    assert "WishartFast" not in index["packages"]["ExponentialFamily"]["exports"]
    assert index["packages"]["ExponentialFamily"]["structs"]["WishartFast"] == ["ν", "invS"]
    assert index["packages"]["ReactiveMP"]["nodes"]["MvNormalMeanCovariance"] == ["out", "μ", "Σ"]


def _inject(tmp_path, rel, old, new):
    """Copy julia/ to tmp_path, replace the unique ``old`` by ``new`` in ``rel``; the copy's root and
    the 1-based line where ``new`` starts."""
    root = tmp_path / "julia"
    shutil.copytree(ROOT / "julia", root)
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not unique in {rel}"
    text = text.replace(old, new)
    path.write_text(text)
    return root, text[:text.index(new)].count("\n") + 1


def _line_of(root, rel, snippet):
    text = (root / rel).read_text()
    assert text.count(snippet) == 1
    return text[:text.index(snippet)].count("\n") + 1


def _findings(root, kind):
    return [(Path(f.path).relative_to(root).as_posix(), f.line, f.message) for f in cjs.check(root) if f.kind == kind]


def test_undefined_name_not_exported_at_the_pinned_version(tmp_path):
    root, _ = _inject(tmp_path, "src/PyRxAIF.jl", "import ExponentialFamily: WishartFast\n", "")
    found = _findings(root, "undefined")
    line = _line_of(root, "src/bridge.jl", "wishart_inv_scale(q::WishartFast)")
    assert ("src/bridge.jl", line) in [(p, n) for p, n, _ in found]
    assert any("`WishartFast` is not defined here" in m and "RxInfer" in m for _, _, m in found)
    # the other signature and the Union in summarize are reported too, nothing else
    assert {p for p, _, _ in found} == {"src/bridge.jl", "src/nodes/controlled_transition.jl"}


def test_undefined_qualified_name(tmp_path):
    root, line = _inject(tmp_path, "src/bridge.jl", "wishart_df(q) = Float64(BayesBase.params(q)[1])",
                         "wishart_df(q) = Float64(BayesBase.paramz(q)[1])")
    assert [(p, n) for p, n, m in _findings(root, "undefined") if "paramz" in m] == [("src/bridge.jl", line)]


def test_rule_argument_that_names_no_interface(tmp_path):
    old = "(q_c::Any, q_z::Categorical, q_A::Any, meta::GoalObservationMeta)"
    root, line = _inject(tmp_path, "src/nodes/goal_observation.jl", old, old.replace("q_A::", "q_B::"))
    found = _findings(root, "rule")
    assert [(p, n) for p, n, _ in found if p.startswith("src/")] == [("src/nodes/goal_observation.jl", line)]
    assert "argument `q_B` names no interface of GoalObservation" in found[0][2]
    # runtests.jl's two calls of the rule to A (q_c, q_z, q_A) now match no rule
    calls = [n for p, n, m in found if p == "test/runtests.jl" and "@call_rule GoalObservation(:A)" in m]
    assert len(calls) == 2 and len(found) == 3


def test_rule_target_that_is_no_interface(tmp_path):
    old = "@rule ControlledTransition(:W, Marginalisation) (q_y_x_u::Any"
    root, line = _inject(tmp_path, "src/nodes/controlled_transition.jl", old, old.replace(":W,", ":w,"))
    found = _findings(root, "rule")
    assert [(p, n) for p, n, _ in found if p.startswith("src/")] == [("src/nodes/controlled_transition.jl", line)]
    assert "has no interface `w`" in found[0][2]
    # and runtests.jl's call with (q_y_x_u, q_a) no longer has a rule to W that takes it
    assert [(p, n) for p, n, m in found if p.startswith("test/")] == [
        ("test/runtests.jl", _line_of(root, "test/runtests.jl", "@call_rule ControlledTransition(:W"))]


def test_infer_keyword_that_rxinfer_does_not_take(tmp_path):
    old = 'res = infer(model = model, data = (y = columns(Y),), free_energy = true)'
    root, line = _inject(tmp_path, "src/bridge.jl", old, old.replace("free_energy", "freeenergy"))
    found = _findings(root, "keyword")
    assert [(p, n) for p, n, _ in found] == [("src/bridge.jl", line)]
    assert "no keyword `freeenergy`" in found[0][2]


def test_where_key_that_no_plugin_reads(tmp_path):
    old = "c[t] ~ GoalObservation(z[t + 1], A) where {\n            meta = go_metas[t]"
    root, line = _inject(tmp_path, "src/models/tmaze.jl", old, old.replace("meta =", "metadata ="))
    found = _findings(root, "keyword")
    assert [(p, n) for p, n, _ in found] == [("src/models/tmaze.jl", line + 1)]
    assert "where { metadata = ... }" in found[0][2]


def test_call_after_eval_without_invokelatest(tmp_path):
    root, line = _inject(tmp_path, "src/bridge.jl", "model = Base.invokelatest(modelfn; kwargs...)",
                         "model = modelfn(; kwargs...)")
    found = _findings(root, "world-age")
    assert [(p, n) for p, n, _ in found] == [("src/bridge.jl", line)]
    assert "`modelfn(...)`" in found[0][2] and "invokelatest" in found[0][2]


def test_variable_that_can_end_with_a_single_use(tmp_path):
    old = "g[length(goal_steps)] ~ MvNormalMeanCovariance(z[horizon + 1], goal_cov)"
    root, _ = _inject(tmp_path, "src/models/lds.jl", old, old.replace("z[horizon + 1]", "z[goal_steps[end]]"))
    found = _findings(root, "half-edge")
    text = (root / "src/models/lds.jl").read_text()
    start = text.index("@model function lds_planning_model")
    line = text[:text.index("z[t + 1] ~ ControlledTransition", start)].count("\n") + 1
    assert [(p, n) for p, n, _ in found] == [("src/models/lds.jl", line)]
    assert "`z[horizon+1]`" in found[0][2] and "data-dependent index `z[goal_steps[" in found[0][2]


def test_field_that_the_annotated_struct_does_not_have(tmp_path):
    root, line = _inject(tmp_path, "src/bridge.jl", "wishart_inv_scale(q::WishartFast) = Matrix(q.invS)",
                         "wishart_inv_scale(q::WishartFast) = Matrix(q.S)")
    found = _findings(root, "field")
    assert [(p, n) for p, n, _ in found] == [("src/bridge.jl", line)]
    assert "WishartFast has no field `S` (fields: ν, invS)" in found[0][2]


def test_field_of_a_local_struct_in_a_rule(tmp_path):
    old = "meta.x === nothing || return categorical(observed_message_z(meta.x, Lbar))\n    logc"
    root, line = _inject(tmp_path, "src/nodes/goal_observation.jl", old, old.replace("meta.x ===", "meta.obs ==="))
    found = _findings(root, "field")
    assert [(p, n) for p, n, _ in found] == [("src/nodes/goal_observation.jl", line)]
    assert "BetheMeta has no field `obs`" in found[0][2]


def test_command_line_reports_path_line_and_exit_status(tmp_path):
    root, line = _inject(tmp_path, "src/bridge.jl", "model = Base.invokelatest(modelfn; kwargs...)",
                         "model = modelfn(; kwargs...)")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "check_julia_static.py"), str(root)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stdout.splitlines()[0].startswith(f"{root / 'src' / 'bridge.jl'}:{line}: world-age: ")
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "check_julia_static.py"), str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "JULIA_DIR" in bad.stderr
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "check_julia_static.py"), str(root), str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "PYTHON_DIR" in bad.stderr


@pytest.mark.parametrize("source, expected", [
    ("@model function m(y)\n    x ~ Normal(0, 1)\n    y ~ Normal(0, 1)\nend\n", 2),       # x used by nothing
    ("@model function m(y, n)\n    for t in 1:n\n        x[t] ~ Normal(0, 1)\n        y[t] ~ Normal(x[t], 1)\n    end\nend\n",
     None),
])
def test_half_edge_check_on_small_models(source, expected):
    tree = cjs.js.parse(source.encode())
    unit = cjs.Unit("m.jl", [("m.jl", source.encode(), tree)])
    lines = [f.line for f in cjs.check_half_edges(unit)]
    assert lines == ([] if expected is None else [expected])


def _bridge_findings(root):
    return [(Path(f.path).relative_to(ROOT).as_posix(), f.line, f.message) for f in cjs.check(root)
            if f.kind == "bridge"]


def _python_line(rel, snippet):
    text = (ROOT / rel).read_text()
    assert text.count(snippet) == 1
    return text[:text.index(snippet)].count("\n") + 1


def test_python_calls_a_function_the_julia_package_does_not_define(tmp_path):
    """The defect of commit c0cd873: py_plan_linear_gaussian removed while Python still calls it."""
    root, _ = _inject(tmp_path, "src/bridge.jl", "function py_plan_linear_gaussian(",
                      "function py_plan_linear_gaussian_unused(")
    line = _python_line("pyrxaif/engines/julia_models.py", 'call("py_plan_linear_gaussian"')
    found = _bridge_findings(root)
    assert [(p, n) for p, n, _ in found] == [("pyrxaif/engines/julia_models.py", line)]
    assert "defines no function `py_plan_linear_gaussian`" in found[0][2]


def test_python_call_with_a_number_of_arguments_no_method_takes(tmp_path):
    root, _ = _inject(tmp_path, "src/bridge.jl", "function py_smooth_lds(Y, Ycov, U, a, W, m1, V1)",
                      "function py_smooth_lds(Y, Ycov, U, a, W, m1, V1, iterations)")
    line = _python_line("pyrxaif/engines/julia_models.py", 'call("py_smooth_lds"')
    found = _bridge_findings(root)
    assert [(p, n) for p, n, _ in found] == [("pyrxaif/engines/julia_models.py", line)]
    assert "called with 7 positional arguments; its Julia methods take 8" in found[0][2]


@pytest.mark.parametrize("signature, python_args, reported", [
    ("f(a, b = 1, xs...; k = 2)", "1", False),             # optional and varargs
    ("f(a, b = 1, xs...; k = 2)", "", True),               # a is required
    ("f(a, b = 1; k = 2)", "1, 2, 3", True),                # a keyword is not positional
    ("f(a, b)", "*rest", False),                            # a starred call may supply both
    ("f(a, b)", "1, *rest", False),
    ("f(a)", "1, 2, *rest", True),                          # at least 2 > 1 even with the star
])
def test_bridge_arity(tmp_path, signature, python_args, reported):
    source = f"module M\npy_{signature} = nothing\nend\n".encode()
    unit = cjs.Unit("src", [("M.jl", source, cjs.js.parse(source))])
    (tmp_path / "m.py").write_text(f"from x import call\ncall(\"py_f\"{', ' if python_args else ''}{python_args})\n")
    found = cjs.check_bridge(unit, tmp_path)
    assert [(Path(f.path).name, f.line) for f in found] == ([("m.py", 2)] if reported else [])


def test_call_rule_argument_that_names_no_interface(tmp_path):
    """@call_rule's (m_x = ..., q_y = ...) fields are checked like @rule's arguments (they were skipped)."""
    old = 'q_z = Categorical(s), q_A = q_A, meta = BetheMeta())'
    root, line = _inject(tmp_path, "test/runtests.jl", old, old.replace("q_A = q_A", "q_B = q_A"))
    found = [(p, n, m) for p, n, m in _findings(root, "rule") if "q_B" in m]
    assert [(p, n) for p, n, _ in found] == [("test/runtests.jl", line), ("test/runtests.jl", line)]
    assert any("argument `q_B` names no interface of GoalObservation" in m for _, _, m in found)


def test_call_rule_arguments_that_no_rule_takes(tmp_path):
    """The rule to A gained q_A (c0cd873): a test still calling it with (q_c, q_z) would find no method."""
    old = 'q_z = Categorical(s), q_A = q_A, meta = BetheMeta())'
    root, line = _inject(tmp_path, "test/runtests.jl", old, 'q_z = Categorical(s), meta = BetheMeta())')
    found = _findings(root, "rule")
    assert [(p, n) for p, n, _ in found] == [("test/runtests.jl", line)]
    assert "@call_rule GoalObservation(:A) with (q_c, q_z): no @rule GoalObservation(:A)" in found[0][2]
    assert "defined: (q_c, q_z, q_A)" in found[0][2]


def test_call_rule_arguments_in_an_order_no_rule_takes(tmp_path):
    old = '(m_y = msg("msg_next"), m_x = msg("msg_z"), q_a = q_a'
    root, line = _inject(tmp_path, "test/runtests.jl", old, '(m_x = msg("msg_z"), m_y = msg("msg_next"), q_a = q_a')
    found = _findings(root, "rule")
    assert [(p, n) for p, n, _ in found] == [("test/runtests.jl", line)]
    assert "ControlledTransition(:u) with (m_x, m_y, q_a, q_W)" in found[0][2]
