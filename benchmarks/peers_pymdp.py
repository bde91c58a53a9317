"""pymdp against pyrxaif on the T-maze: agent-steps per second, batched agents, each library in its own process.

    python benchmarks/peers_pymdp.py [--agents 1 16 128] [--steps 40] [--out peers_pymdp.json]

Data: N agents × T steps of T-maze observations and actions (random moves, the env's own dynamics:
two moves then a reset), generated once and shared through a file. Each library runs in a fresh
process (``--worker pymdp|pyrxaif``) and does, per step and for the whole batch: state inference on
the observation, policy inference, and the prediction through the recorded action (pymdp:
``infer_states`` → ``infer_policies`` → ``update_empirical_prior`` with ``policy_len=2``, the three
jitted together with ``equinox.filter_jit``; pyrxaif: ``Agent(method=…, horizon=2, batch_size=N)``
``infer_states`` → ``infer_policies`` → ``take_action``). The posteriors of both are checked equal
(to 1e-6) before any timing is reported; policy inference differs by design (docs/models.md), so
only its cost is compared. Timing: one warm-up pass over the data, then the median of
``--repeats`` passes; agent-steps/s = N·T / seconds. Float64 in both (pyrxaif's default; pymdp
runs in the same process setting). Each row prints the host's 1-minute load average: on a shared
host, compare rows taken at similar load. What the two libraries compute per step differs (closed-form
EFE of 16 policies vs 16 message-passing sweeps or LAIF's fixed-point evaluation; the GFE agent skips
policy inference at the last step of each episode): see docs/models.md.
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
    """(result of a warm-up pass, median seconds of ``repeats`` further passes)."""
    post = one_pass()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - t0)
    return post, float(np.median(times))


def worker_pyrxaif(data: dict, repeats: int, method: str):
    import pyrxaif  # noqa: F401,PLC0415
    from pyrxaif.agents.pomdp_agent import Agent  # noqa: PLC0415
    from pyrxaif.envs.tmaze import tmaze_pomdp  # noqa: PLC0415

    obs, act, start = data["obs"], data["act"], data["start"]
    N, T, _ = obs.shape
    agent = Agent(tmaze_pomdp(), method=method, horizon=2, batch_size=N, iterations=20, burn_in=5, num_samples=10)

    def one_pass():
        post = np.zeros((N, T, 2))
        for t in range(T):
            if start[t]:
                agent.reset()
            qs = agent.infer_states(obs[:, t])
            post[:, t] = qs[1]
            if method in ("gfe", "bethe") and (t + 1 == T or start[t + 1]):
                continue                       # the GFE agent's policies end with the episode (2 moves)
            agent.infer_policies()
            agent.take_action(act[:, t])
        return post

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
                       policy_len=2, batch_size=N)

    @eqx.filter_jit
    def step(agent, o, prior, a):
        qs = agent.infer_states([o[:, 0:1], o[:, 1:2]], prior)
        q_pi, _ = agent.infer_policies(qs)
        nxt = agent.update_empirical_prior(jnp.stack([a, jnp.zeros_like(a)], axis=1), qs)
        return qs, q_pi, nxt

    def one_pass():
        post = np.zeros((N, T, 2))
        prior = agent.D
        for t in range(T):
            if start[t]:
                prior = agent.D
            qs, q_pi, prior = step(agent, jnp.asarray(obs[:, t]), prior, jnp.asarray(act[:, t]))
            post[:, t] = np.asarray(qs[1])[:, -1]
        jax.block_until_ready(prior)
        return post

    return _timed(one_pass, repeats)


def _spawn(which: str, data_path: str, repeats: int, method: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.npz")
        cmd = [sys.executable, __file__, "--worker", which, "--data", data_path, "--result", out,
               "--repeats", str(repeats), "--method", method]
        subprocess.run(cmd, check=True, timeout=1800)
        r = np.load(out)
        return {"post": r["post"], "seconds": float(r["seconds"])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, nargs="+", default=[1, 16, 128])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--methods", nargs="+", default=["aif-mp", "gfe"])
    p.add_argument("--out", default=None)
    p.add_argument("--worker", choices=["pymdp", "pyrxaif"], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--method", default="aif-mp", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        data = dict(np.load(a.data))
        post, sec = worker_pymdp(data, a.repeats) if a.worker == "pymdp" else worker_pyrxaif(data, a.repeats,
                                                                                            a.method)
        np.savez(a.result, post=post, seconds=sec)
        return 0
    if min(a.agents) < 1 or a.steps < 3 or a.repeats < 1:
        p.error("--agents: expected positive integers, --steps >= 3, --repeats >= 1")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in a.agents:
            path = os.path.join(d, f"data_{n}.npz")
            np.savez(path, **make_data(n, a.steps))
            ref = _spawn("pymdp", path, a.repeats, "")
            for method in a.methods:
                ours = _spawn("pyrxaif", path, a.repeats, method)
                err = float(np.max(np.abs(ours["post"] - ref["post"])))
                if err > 1e-6:
                    raise SystemExit(f"posteriors differ by {err:.3g} (N = {n}, {method}): not timing")
                steps = n * a.steps
                row = {"agents": n, "method": method, "max_posterior_difference": err,
                       "pymdp_agent_steps_per_s": steps / ref["seconds"],
                       "pyrxaif_agent_steps_per_s": steps / ours["seconds"]}
                row["ratio_pyrxaif_over_pymdp"] = row["pyrxaif_agent_steps_per_s"] / row["pymdp_agent_steps_per_s"]
                row["load_average_1min"] = os.getloadavg()[0]      # other jobs on the host skew both columns
                rows.append(row)
                print(f"N={n:4d} {method:7s} |Δq|={err:.1e}  pymdp {row['pymdp_agent_steps_per_s']:9.1f}  "
                      f"pyrxaif {row['pyrxaif_agent_steps_per_s']:9.1f} agent-steps/s  "
                      f"ratio {row['ratio_pyrxaif_over_pymdp']:.2f}  (load {row['load_average_1min']:.1f})", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
