"""The best score any controller can reach on a pendulum task's PC3 protocol: the ceiling for pixels.

A controller that knows the true state and the true physics, and plans the whole 100-step episode
optimally, is the upper bound of every learned-latent controller. This computes it by finite-horizon
dynamic programming on a (θ, ω) grid (value V_k(θ, ω) = max_u [1{θ' in band} + V_{k+1}(θ', ω')],
bilinear interpolation between grid points, torques on an evenly spaced grid over ±max_torque), then
runs the greedy policy of those values on the exact simulator (``pendulum_step``) from the protocol's
own starts and scores it with the task's ``score``. Printed per band: the DP estimate, the score the
policy reaches on the exact simulator (mean ± SE over starts, worst, best), and the fewest steps to the
band. Refining the grid (``--grid``) shows the figures are converged.

``--preset pc3`` is the pendulum of PC3's published code (VinAIResearch/PC3-pytorch, ``ilqr_config/swing.json``
and ``balance.json`` on PCC's ``PendulumMDP``): a rod of m = 0.1, l = 0.5 with inertia m l²/3 but gravity's
torque m g l sin θ (so θ̈ = −(3g/l) sin θ + 3τ/(m l²): our rod formula with g doubled), 50 Hz, |τ| ≤ 0.65
(above gravity's largest torque, 0.49), |ω| ≤ 3π; swing-up starts 0.157–0.314 rad from hanging at rest.
Integrated here by the library's semi-implicit Euler (theirs: an adaptive Runge-Kutta).

    python benchmarks/pendulum_ceiling.py [--preset underactuated|reference|pc3] [--starts 100] [--grid 720x320]
        [--max-torque T] [--protocols swing_up balance]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from pyrxaif.agents.pixel_tasks import DMC_BAND, PC3_BAND, PROTOCOL_STEPS, PendulumTask
from pyrxaif.envs.pendulum import pendulum_step, wrap_angle


#: PC3's pendulum in this library's terms (see the module docstring): g doubled makes the rod's gravity
#: term 3g/l, as in PCC's PendulumMDP
PC3_PHYSICS = {"g": 2 * 9.81, "m": 0.1, "l": 0.5, "dt": 0.02, "max_torque": 0.65, "max_speed": 3 * np.pi}
PC3_STARTS = {
    "swing_up": lambda rng: ({"theta": float(rng.choice([-1.0, 1.0]) * rng.uniform(0.157, 0.314)), "omega": 0.0},
                             float(np.pi)),
    "balance": lambda rng: ({"theta": float(np.pi), "omega": 0.0}, float(np.pi)),
}


def _physics(task):
    return dict(g=task.g, m=task.m, l=task.l, dt=task.dt, max_speed=task.max_speed, inertia=task.inertia)


def _interpolate(values, theta, omega, max_speed):
    """Bilinear interpolation of a grid over θ ∈ [−π, π) (periodic) × ω ∈ [−max_speed, max_speed]."""
    n_theta, n_omega = values.shape
    it = (wrap_angle(theta) + np.pi) / (2.0 * np.pi) * n_theta
    iw = (omega + max_speed) / (2.0 * max_speed) * (n_omega - 1)
    i0 = np.floor(it).astype(int) % n_theta
    i1 = (i0 + 1) % n_theta
    ft = it - np.floor(it)
    j0 = np.clip(np.floor(iw).astype(int), 0, n_omega - 2)
    fw = np.clip(iw - j0, 0.0, 1.0)
    return ((1 - ft) * (1 - fw) * values[i0, j0] + ft * (1 - fw) * values[i1, j0]
            + (1 - ft) * fw * values[i0, j0 + 1] + ft * fw * values[i1, j0 + 1])


def value_tables(task, band, steps, n_theta, n_omega, n_torques):
    """V[j] on the grid: the most post-action states within ``band`` of upright reachable in j steps."""
    physics = _physics(task)
    theta = np.linspace(-np.pi, np.pi, n_theta, endpoint=False)
    omega = np.linspace(-task.max_speed, task.max_speed, n_omega)
    tt, ww = np.meshgrid(theta, omega, indexing="ij")
    torques = np.linspace(-task.max_torque, task.max_torque, n_torques)
    nxt = [pendulum_step(tt, ww, u, **physics) for u in torques]
    reward = [(np.abs(wrap_angle(t - np.pi)) < band).astype(np.float64) for t, _ in nxt]
    tables = [np.zeros_like(tt)]
    for _ in tqdm(range(steps), desc="dynamic programming", leave=False):
        tables.append(np.max([r + _interpolate(tables[-1], t, w, task.max_speed)
                              for r, (t, w) in zip(reward, nxt)], axis=0))
    return tables, torques


def run_policy(task, band, tables, torques, starts, steps):
    """Greedy policy of the value tables on the exact simulator, all starts at once: θ trajectories."""
    physics = _physics(task)
    theta = np.array([s["theta"] for s in starts], dtype=np.float64)
    omega = np.array([s.get("omega", 0.0) for s in starts], dtype=np.float64)
    path = [theta]
    for k in range(steps):
        candidates = [pendulum_step(theta, omega, u, **physics) for u in torques]
        q = np.stack([(np.abs(wrap_angle(t - np.pi)) < band) + _interpolate(tables[steps - 1 - k], t, w,
                                                                             task.max_speed)
                      for t, w in candidates])
        best = np.argmax(q, axis=0)
        theta = np.choose(best, [c[0] for c in candidates])
        omega = np.choose(best, [c[1] for c in candidates])
        path.append(theta)
    return np.stack(path, axis=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=("underactuated", "reference", "pc3"), default="underactuated")
    ap.add_argument("--starts", type=int, default=100, help="protocol starts (rng seed 0)")
    ap.add_argument("--grid", default="720x320", help="θ × ω grid points")
    ap.add_argument("--torques", type=int, default=9, help="torques on a grid over ±max_torque")
    ap.add_argument("--max-torque", type=float, default=None,
                    help="override the preset's torque limit (how the ceiling depends on control authority)")
    ap.add_argument("--protocols", nargs="+", choices=("swing_up", "balance"), default=("swing_up", "balance"))
    args = ap.parse_args(argv)
    try:
        n_theta, n_omega = (int(v) for v in args.grid.lower().split("x"))
    except ValueError:
        ap.error(f"--grid: expected THETAxOMEGA point counts such as 720x320, got {args.grid!r}")
    if min(n_theta, n_omega) < 8 or args.torques < 2 or args.starts < 1:
        ap.error("--grid: at least 8x8 points; --torques: at least 2; --starts: at least 1")
    if args.max_torque is not None and not (np.isfinite(args.max_torque) and args.max_torque > 0):
        ap.error(f"--max-torque: expected a positive number, got {args.max_torque}")

    task = (replace(PendulumTask.preset("underactuated"), **PC3_PHYSICS) if args.preset == "pc3"
            else PendulumTask.preset(args.preset))
    if args.max_torque is not None:
        task = replace(task, max_torque=args.max_torque)
    print(f"pendulum {args.preset}: {_physics(task)}, |torque| <= {task.max_torque}; grid {n_theta}x{n_omega}, "
          f"{args.torques} torques, {args.starts} protocol starts")
    rng = np.random.default_rng(0)
    protocols = {p.name: p for p in task.protocols()}
    if args.preset == "pc3":
        protocols = {name: replace(p, start=PC3_STARTS[name]) for name, p in protocols.items()}
    for name in args.protocols:
        protocol = protocols[name]
        starts = [protocol.start(rng)[0] for _ in range(args.starts)]
        for label, band in (("within pi/6", PC3_BAND), ("within 8 deg", DMC_BAND)):
            t0 = time.perf_counter()
            tables, torques = value_tables(task, band, protocol.steps, n_theta, n_omega, args.torques)
            paths = run_policy(task, band, tables, torques, starts, protocol.steps)
            key = "within_pi_6_pct" if band == PC3_BAND else "within_8deg_pct"
            scores = np.array([task.score(p, np.pi)[key] for p in paths])
            estimate = np.mean([_interpolate(tables[protocol.steps], np.array(s["theta"]),
                                             np.array(s.get("omega", 0.0)), task.max_speed) for s in starts])
            inside = np.abs(wrap_angle(paths[:, 1:] - np.pi)) < band
            first = np.where(inside.any(1), inside.argmax(1) + 1, protocol.steps + 1)
            print(f"  {name:8s} {label:12s}: DP estimate {estimate:5.1f} %; optimal policy on the exact "
                  f"simulator {scores.mean():5.1f} ± {scores.std(ddof=1) / np.sqrt(len(scores)):.1f} % "
                  f"(worst {scores.min():.0f}, best {scores.max():.0f}); first step in band "
                  f"{first.min()}-{first.max()} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
