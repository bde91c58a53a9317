"""The exit-code contract of every command (pyrxaif.exit_codes, README) and the output-folder rules
(pyrxaif.run_folder): usage errors are one line and exit 2 before any work, refused checkpoints exit 4,
an interrupted run (SIGINT) leaves the target folder untouched and its staging folder marked incomplete,
an existing folder is never mixed with a new run."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import pyrxaif  # noqa: F401
from pyrxaif.agents import pixel_control as pc
from pyrxaif.agents.pixel_tasks import DigitsTask, PendulumTask
from pyrxaif.cli import main
from pyrxaif.inference import em
from pyrxaif.nn import vae
from pyrxaif.run_folder import MARKER, RunFolder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _untrained_checkpoint(path, task, frames=2, latent_dim=3, passed=False):
    cfg = pc.PixelControlConfig(task=task, data=pc.DataConfig(n_traj=2, traj_len=6),
                                model=pc.ModelConfig(latent_dim=latent_dim, frames=frames, per_frame=False, n_local=2))
    params = vae.init_vae(jax.random.PRNGKey(0), vae.VAEConfig(latent_dim, frames))
    lds = em.point_lds(0.9 * np.eye(3), np.ones((3, 1)), 0.1 * np.eye(3), np.zeros(3), np.eye(3))
    local = em.LocalLDS(np.zeros((2, 3)), np.asarray(1.0), np.stack([0.9 * np.eye(3)] * 2), np.ones((2, 3, 1)),
                        np.zeros((2, 3)), np.stack([0.1 * np.eye(3)] * 2))
    pc.save(pc.PixelControlModel(cfg, params, lds, local), str(path), {"passed": passed, "metrics": {}})
    return str(path)


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    for w in words:
        assert w in last, err
    return last


@pytest.mark.parametrize("argv,flag", [
    (["gridworld", "--horizon", "0"], "--horizon"),
    (["gridworld", "--iters", "0"], "--iters"),
    (["gridworld", "--obs-weight", "0"], "--obs-weight"),
    (["gridworld", "--episodes", "0"], "--episodes"),
    (["gridworld", "--episodes", "-1"], "--episodes"),
    (["gridworld", "--damping", "1.5"], "--damping"),
    (["gridworld", "--engine", "torch"], "--engine"),
    (["pendulum", "--steps", "0"], "--steps"),
    (["pendulum", "--steps", "-1"], "--steps"),
    (["pendulum", "--episodes", "0"], "--episodes"),
    (["pendulum", "--episodes", "-1"], "--episodes"),
    (["pendulum", "--seed", "-1"], "--seed"),
    (["pendulum", "--checkpoint", "/nonexistent/model.msgpack"], "--checkpoint"),
    (["pendulum", "--engine", "torch"], "--engine"),
    (["pendulum", "--preset", "hard"], "--preset"),
    (["pendulum", "--restarts", "-1"], "--restarts"),
    (["pendulum", "--restarts", "1", "--checkpoint", "/nonexistent/model.msgpack"], "--restarts"),
    (["digits", "--restarts", "-2"], "--restarts"),
    (["digits", "--episodes", "0"], "--episodes"),
    (["digits", "--mnist", "/nonexistent/mnist.npz"], "--mnist"),
    (["tmaze", "--runs", "0"], "--runs"),
    (["tmaze", "--burn-in", "60"], "--burn-in"),
    (["tmaze", "--alpha", "1.5"], "--alpha"),
    (["info", "--bogus"], "--bogus"),
])
def test_usage_errors_exit_2_with_one_line_and_no_output(argv, flag, tmp_path, capsys):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    assert main(argv + ["--out", str(out)] if argv[0] != "info" else argv) == 2
    assert time.perf_counter() - t0 < 20                     # before any training or simulation
    _one_line_error(capsys, flag)
    assert not out.exists() and os.listdir(tmp_path) == []


def test_unknown_command_and_bad_out_paths(tmp_path, capsys):
    assert main(["cartpole"]) == 2
    assert main([]) == 2
    capsys.readouterr()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for command in (["pendulum", "--quick"], ["gridworld"], ["tmaze", "--runs", "1"]):
        assert main(command + ["--out", str(a_file)]) == 2
        _one_line_error(capsys, "--out", "is a file")
        assert main(command + ["--out", str(a_file / "sub")]) == 2       # its parent is a file
        _one_line_error(capsys, "--out", "cannot create")
    assert main(["pendulum", "--out", "/proc/pyrxaif-cannot-write-here"]) == 2
    _one_line_error(capsys, "--out")
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


@pytest.mark.parametrize("command", [["gridworld"], ["pendulum", "--quick"], ["tmaze", "--runs", "1"]])
def test_engine_unavailable_exits_3(command, tmp_path, capsys, monkeypatch):
    """Where the Julia engine cannot start (here: made to fail), exit 3 saying why, nothing written.
    (tests/test_engine_switch.py checks the real refusal on hosts without Julia.)"""
    import pyrxaif.engines as engines
    from pyrxaif.engines.julia import JuliaUnavailableError

    def unavailable(engine=None):
        raise JuliaUnavailableError("Julia engine unavailable: no Julia executable (test)")

    monkeypatch.setattr(engines, "require_engine", unavailable)
    assert main(command + ["--engine", "julia", "--out", str(tmp_path / "o")]) == 3
    _one_line_error(capsys, "Julia engine unavailable")
    assert not (tmp_path / "o").exists()


def test_internal_error_exits_1_with_a_traceback():
    code = ("import sys, pyrxaif.commands.info as m\n"
            "def boom(args): raise RuntimeError('a bug')\n"
            "m.run = boom\n"
            "from pyrxaif.cli import main\nsys.exit(main(['info']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=os.environ | {"PYTHONPATH": ROOT})
    assert r.returncode == 1 and "Traceback" in r.stderr and "RuntimeError: a bug" in r.stderr


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    pend = _untrained_checkpoint(d / "pendulum.msgpack", PendulumTask())
    dig = _untrained_checkpoint(d / "digits.msgpack", DigitsTask(), frames=1)
    return {"pendulum": pend, "digits": dig, "dir": d}


@pytest.mark.parametrize("command,other", [("pendulum", "digits"), ("digits", "pendulum")])
def test_checkpoint_of_the_other_task_is_refused(command, other, checkpoints, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([command, "--checkpoint", checkpoints[other], "--out", str(out), "--no-progress"]) == 4
    line = _one_line_error(capsys, "refused", checkpoints[other], f"task {other!r}, not {command!r}")
    assert "checkpoint" in line and not out.exists()


def test_damaged_checkpoints_are_refused(checkpoints, tmp_path, capsys):
    raw = open(checkpoints["pendulum"], "rb").read()
    mid = len(raw) // 2
    flipped = tmp_path / "flipped.msgpack"
    flipped.write_bytes(raw[:mid] + bytes(b ^ 0xFF for b in raw[mid:mid + 64]) + raw[mid + 64:])
    truncated = tmp_path / "truncated.msgpack"
    truncated.write_bytes(raw[: len(raw) - 100])
    for path, why in ((flipped, "content hash mismatch"), (truncated, "truncated")):
        assert main(["pendulum", "--checkpoint", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 4
        _one_line_error(capsys, "refused", str(path), why)
    assert main(["pendulum", "--preset", "underactuated", "--checkpoint", checkpoints["pendulum"],
                 "--out", str(tmp_path / "o")]) == 4
    _one_line_error(capsys, "refused", "max_torque=2.0")
    assert not (tmp_path / "o").exists()


def test_model_below_the_bar_is_refused_and_a_loaded_checkpoint_is_not_claimed_saved(checkpoints, tmp_path,
                                                                                       capsys):
    out = tmp_path / "below"
    assert main(["pendulum", "--checkpoint", checkpoints["pendulum"], "--out", str(out), "--no-progress"]) == 4
    text = capsys.readouterr().out
    assert "reconstruction MSE" in text and "model.msgpack" not in text
    rep = json.load(open(out / "results.json"))
    assert "reconstruction MSE" in rep["refused"] and rep["validation_passed"] is False
    assert sorted(os.listdir(out)) == ["results.json"]          # nothing else written, nothing claimed
    out2 = tmp_path / "planned"
    assert main(["pendulum", "--checkpoint", checkpoints["pendulum"], "--no-validate", "--episodes", "1",
                 "--steps", "2", "--out", str(out2), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "model.msgpack" not in text and "model.msgpack" not in os.listdir(out2)
    assert f"saved pendulum.gif, pendulum.png, results.json in {out2}" in text


def test_run_folder_never_mixes_and_commits_atomically(tmp_path):
    out = tmp_path / "run"
    with RunFolder(str(out)) as f:
        assert not out.exists() and os.path.exists(os.path.join(f.staging, MARKER))
        open(f.path("results.json"), "w").write("1")
        f.commit()
    assert sorted(os.listdir(out)) == ["results.json"] and not any(p.name.startswith(".") for p in tmp_path.iterdir())
    from pyrxaif.checkpoint import default_mode
    assert os.stat(out).st_mode & 0o777 == default_mode(directory=True)
    with RunFolder(str(out)) as f:                              # an existing folder with results: a new one
        open(f.path("results.json"), "w").write("2")
        f.commit()
    assert f.target == str(out) + "-2" and (out / "results.json").read_text() == "1"
    with pytest.raises(KeyboardInterrupt):
        with RunFolder(str(out), overwrite=True) as f:
            open(f.path("results.json"), "w").write("3")
            raise KeyboardInterrupt
    assert (out / "results.json").read_text() == "1"           # untouched
    assert "interrupted" in open(os.path.join(f.staging, MARKER)).read()
    with RunFolder(str(out), overwrite=True) as f:
        open(f.path("new.json"), "w").write("4")
        f.commit()
    assert sorted(os.listdir(out)) == ["new.json"]              # replaced at commit, not mixed
    empty = tmp_path / "empty"
    empty.mkdir()
    with RunFolder(str(empty)) as f:
        f.commit()
    assert f.target == str(empty)


def test_sigint_mid_run_leaves_nothing_mixed_or_half_written(tmp_path):
    out = tmp_path / "pend"
    out.mkdir()
    (out / "results.json").write_text('{"old": true}')
    cmd = [sys.executable, "-m", "pyrxaif.cli", "pendulum", "--quick", "--overwrite", "--out", str(out),
           "--no-progress"]
    # the child starts with SIGINT's default action even where pytest itself runs with SIGINT ignored (a
    # background job of a shell without job control: Python then keeps it ignored and the run goes on)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"PYTHONPATH": ROOT},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        staging = []
        while time.time() < deadline and not staging:
            staging = [p for p in tmp_path.iterdir() if p.name.startswith(".pend.incomplete-")]
            time.sleep(0.2)
        assert staging, "the run never started"
        time.sleep(3.0)                                          # in the middle of training
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert os.listdir(out) == ["results.json"] and json.loads((out / "results.json").read_text()) == {"old": True}
    (stage,) = staging
    assert "interrupted" in (stage / MARKER).read_text()
    if (stage / "model.msgpack").exists():                       # written atomically, or not at all
        pc.load(str(stage / "model.msgpack"), task="pendulum")
    assert not [p for p in stage.iterdir() if p.name.endswith(".tmp")]
