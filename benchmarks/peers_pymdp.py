"""pymdp against pyrxaif on the T-maze: agent-steps per second, batched agents, each library in its own process.

    python benchmarks/peers_pymdp.py [--agents 1 16 128] [--steps 30] [--methods efe aif-mp gfe]
                                     [--api step calls] [--out peers_pymdp.json]

Data: N agents × T steps of T-maze observations and actions (random moves, the env's own dynamics:
two moves then a reset), generated once and shared through a file. Each library runs in a fresh
process (``--worker pymdp|pyrxaif``) and does, per step and for the whole batch: state inference on
the observation, policy inference, and the prediction through the recorded action (pymdp:
``infer_states`` → ``infer_policies`` → ``update_empirical_prior`` with ``policy_len=2``, the three
jitted together with ``equinox.filter_jit``; pyrxaif: ``Agent(method=…, horizon=2, batch_size=N)``,
either ``agent.step(obs, action)`` — the three fused into one compiled call (``--api step``, default) —
or ``infer_states`` → ``infer_policies`` → ``take_action`` as three calls (``--api calls``)). The
posteriors of both are checked equal (to 1e-6) before any timing is reported, and for ``efe`` (pymdp's
algorithm, ``gamma`` = pymdp's default 1) the policy posteriors q(π) too; the other methods' policy
inference differs by design (docs/models.md), so only its cost is compared. Timing: one warm-up pass
over the data, then the median and the fastest of ``--repeats`` passes (the fastest is the least
disturbed by other jobs on a shared host); agent-steps/s = N·T / seconds; pymdp is run again for every
row, so both columns of a row are measured back to back. Float64 in both (pyrxaif's default; pymdp
runs in the same process setting). Each row prints the host's 1-minute load average: on a shared
host, compare rows taken at similar load. ``efe`` computes what pymdp computes (closed-form EFE of the
16 policies); for ``aif-mp`` and ``gfe`` the work per step differs (16 message-passing sweeps, or LAIF's
fixed-point evaluation; the GFE agent skips policy inference at the last step of each episode, and its
``step`` is the three calls): see docs/models.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def make_data(n_agents: int, steps: int, seed: int = 0) -> dict:
    """Observations (N, T, 2) [position, outcome], actions (N, T) and episode starts (T,) of T-maze runs."""
    from pyrxaif.envs.tmaze import TMaze  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    obs = np.zeros((n_agents, steps, 2), np.int64)
    act = rng.integers(0, 4, size=(n_agents, steps))
    start = (np.arange(steps) % 3) == 0                      # reset, move, move; then reset again
    for i in range(n_agents):
        env = TMaze(moves=2)
        for t in range(steps):
            x = env.reset(seed=int(rng.integers(1 << 30)))[0] if start[t] else env.step(int(act[i, t - 1]))[0]
            obs[i, t] = (x // 4, x % 4)
    return {"obs": obs, "act": act, "start": start}


def _timed(one_pass, repeats: int):
    """(result of a warm-up pass, seconds of ``repeats`` further passes: [median, fastest])."""
    post = one_pass()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - t0)
    return post, [float(np.median(times)), float(np.min(times))]


#: Number of T-maze policies of length 2 (both libraries enumerate them in the same order).
NUM_POLICIES = 16
#: pymdp's default policy precision, used by both libraries' ``efe``.
GAMMA = 1.0


def worker_pyrxaif(data: dict, repeats: int, method: str, api: str = "step"):
    """((posteriors (N, T, 2) of the reward side, q(π) (N, T, 16) for ``efe`` else NaN), [median, fastest] s)."""
    import pyrxaif  # noqa: F401,PLC0415
    from pyrxaif.agents.pomdp_agent import Agent  # noqa: PLC0415
    from pyrxaif.envs.tmaze import tmaze_pomdp  # noqa: PLC0415

    obs, act, start = data["obs"], data["act"], data["start"]
    N, T, _ = obs.shape
    agent = Agent(tmaze_pomdp(), method=method, horizon=2, batch_size=N, gamma=GAMMA, iterations=20, burn_in=5,
                  num_samples=10)

    def one_pass():
        post, q_pi = np.zeros((N, T, 2)), np.full((N, T, NUM_POLICIES), np.nan)
        for t in range(T):
            if start[t]:
                agent.reset()
            if method in ("gfe", "bethe") and (t + 1 == T or start[t + 1]):
                post[:, t] = agent.infer_states(obs[:, t])[1]
                continue                       # the GFE agent's policies end with the episode (2 moves)
            if api == "step":
                qs, pol, _ = agent.step(obs[:, t], act[:, t])
            else:
                qs = agent.infer_states(obs[:, t])
                pol = agent.infer_policies()
                agent.take_action(act[:, t])
            post[:, t] = qs[1]
            if method == "efe":
                q_pi[:, t] = pol[0]
        return post, q_pi

    return _timed(one_pass, repeats)


def worker_pymdp(data: dict, repeats: int):
    import pyrxaif  # noqa: F401,PLC0415  (float64, as the pyrxaif worker)
    import equinox as eqx  # noqa: PLC0415
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    from pymdp.agent import Agent as PymdpAgent  # noqa: PLC0415

    from pyrxaif.envs.tmaze import tmaze_pomdp  # noqa: PLC0415

    obs, act, start = data["obs"], data["act"], data["start"]
    N, T, _ = obs.shape
    m = tmaze_pomdp()
    batch = lambda xs: [jnp.broadcast_to(jnp.asarray(x), (N,) + x.shape) for x in xs]  # noqa: E731
    agent = PymdpAgent(A=batch(m.A), B=batch(m.B), C=batch(m.C), D=batch(m.D), num_controls=m.num_controls,
                       policy_len=2, batch_size=N, gamma=GAMMA)

    @eqx.filter_jit
    def step(agent, o, prior, a):
        qs = agent.infer_states([o[:, 0:1], o[:, 1:2]], prior)
        q_pi, _ = agent.infer_policies(qs)
        nxt = agent.update_empirical_prior(jnp.stack([a, jnp.zeros_like(a)], axis=1), qs)
        return qs, q_pi, nxt

    def one_pass():
        post, pis = np.zeros((N, T, 2)), np.zeros((N, T, NUM_POLICIES))
        prior = agent.D
        for t in range(T):
            if start[t]:
                prior = agent.D
            qs, q_pi, prior = step(agent, jnp.asarray(obs[:, t]), prior, jnp.asarray(act[:, t]))
            side, pis[:, t] = jax.device_get((qs[1], q_pi))      # one transfer, as pyrxaif's step
            post[:, t] = side[:, -1]
        jax.block_until_ready(prior)
        return post, pis

    return _timed(one_pass, repeats)


def _spawn(which: str, data_path: str, repeats: int, method: str, api: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.npz")
        cmd = [sys.executable, __file__, "--worker", which, "--data", data_path, "--result", out,
               "--repeats", str(repeats), "--method", method, "--api-one", api]
        subprocess.run(cmd, check=True, timeout=1800)
        r = np.load(out)
        return {"post": r["post"], "q_pi": r["q_pi"], "seconds": r["seconds"].tolist()}


def max_differences(ours: dict, ref: dict, method: str) -> tuple[float, float]:
    """Largest differences of the reward-side posteriors and (``efe`` only, else NaN) of q(π)."""
    post = float(np.max(np.abs(ours["post"] - ref["post"])))
    q_pi = float(np.max(np.abs(ours["q_pi"] - ref["q_pi"]))) if method == "efe" else float("nan")
    return post, q_pi


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, nargs="+", default=[1, 16, 128])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--methods", nargs="+", default=["efe", "aif-mp", "gfe"])
    p.add_argument("--api", nargs="+", default=["step"], choices=["step", "calls"],
                   help="pyrxaif's loop: one fused call per step, and/or the three calls")
    p.add_argument("--out", default=None)
    p.add_argument("--worker", choices=["pymdp", "pyrxaif"], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--method", default="aif-mp", help=argparse.SUPPRESS)
    p.add_argument("--api-one", dest="api_one", default="step", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        data = dict(np.load(a.data))
        (post, q_pi), sec = (worker_pymdp(data, a.repeats) if a.worker == "pymdp"
                             else worker_pyrxaif(data, a.repeats, a.method, a.api_one))
        np.savez(a.result, post=post, q_pi=q_pi, seconds=sec)
        return 0
    if min(a.agents) < 1 or a.steps < 3 or a.repeats < 1:
        p.error("--agents: expected positive integers, --steps >= 3, --repeats >= 1")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in a.agents:
            path = os.path.join(d, f"data_{n}.npz")
            np.savez(path, **make_data(n, a.steps))
            for method in a.methods:
                for api in (a.api[:1] if method in ("gfe", "bethe") else a.api):   # GFE's step is the calls
                    # pymdp again for every row: both columns of a row are measured back to back
                    ref = _spawn("pymdp", path, a.repeats, "", "")
                    ours = _spawn("pyrxaif", path, a.repeats, method, api)
                    err, err_pi = max_differences(ours, ref, method)
                    if err > 1e-6 or err_pi > 1e-6:
                        raise SystemExit(f"outputs differ: posteriors by {err:.3g}, q(π) by {err_pi:.3g} "
                                         f"(N = {n}, {method}): not timing")
                    steps = n * a.steps
                    row = {"agents": n, "method": method, "api": api, "max_posterior_difference": err,
                           "max_policy_posterior_difference": err_pi}
                    for which, k in (("median", 0), ("best", 1)):   # best: least disturbed by other jobs
                        row[f"pymdp_agent_steps_per_s_{which}"] = steps / ref["seconds"][k]
                        row[f"pyrxaif_agent_steps_per_s_{which}"] = steps / ours["seconds"][k]
                        row[f"ratio_pyrxaif_over_pymdp_{which}"] = ref["seconds"][k] / ours["seconds"][k]
                    row["load_average_1min"] = os.getloadavg()[0]      # other jobs on the host skew both columns
                    rows.append(row)
                    print(f"N={n:5d} {method:7s} {api:5s} |Δq|={err:.1e} |Δq(π)|={err_pi:.1e}  agent-steps/s "
                          f"median: pymdp {row['pymdp_agent_steps_per_s_median']:9.0f} pyrxaif "
                          f"{row['pyrxaif_agent_steps_per_s_median']:9.0f} "
                          f"({row['ratio_pyrxaif_over_pymdp_median']:.2f}x)"
                          f"  best: pymdp {row['pymdp_agent_steps_per_s_best']:9.0f} pyrxaif "
                          f"{row['pyrxaif_agent_steps_per_s_best']:9.0f} ({row['ratio_pyrxaif_over_pymdp_best']:.2f}x)"
                          f"  (load {row['load_average_1min']:.1f})", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
