"""pyrxaif against peer libraries, each library in its own process on the same data.

    python benchmarks/peers.py --peer dynamax [--sizes 100 1000 10000] [--dims 2 8 32] [--em-iters 20]

``--peer dynamax``: linear-Gaussian SSM filter, smoother and EM at each (T, state dim D); emissions of
dimension D, one input, float64. The driver writes the data to a temporary .npz, runs one worker
process per library (``--worker pyrxaif|dynamax``), checks that the outputs agree (1e-6 relative /
absolute: the filter's marginal log-likelihood and filtered means, the smoother's log-likelihood and
smoothed means) before printing any time, then prints the fastest of ``--repeats`` warm calls (after a
compile call, so compilation is excluded; the minimum, because on a shared host the other statistics
mostly measure the other processes) and the ratios peer / pyrxaif (> 1: pyrxaif faster). EM is not
the same algorithm on both sides (dynamax: point EM of all parameters, jitted; pyrxaif: ``fit_vb``,
VB on the dynamics + ML emissions), so its row compares time for ``--em-iters`` iterations only.
A second peer (pymdp) is added as another entry of ``PEERS``: a data maker, a worker and a checker.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ dynamax peer: data, workers, check
def lds_data(T, D, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(D, D))
    params = dict(initial_mean=np.zeros(D), initial_covariance=np.eye(D),
                  dynamics_weights=0.9 * a / np.max(np.abs(np.linalg.eigvals(a))),
                  dynamics_input_weights=rng.normal(size=(D, 1)) / np.sqrt(D), dynamics_bias=np.zeros(D),
                  dynamics_covariance=0.1 * np.eye(D), emission_weights=np.eye(D) + 0.1 * rng.normal(size=(D, D)),
                  emission_input_weights=np.zeros((D, 1)), emission_bias=np.zeros(D),
                  emission_covariance=0.5 * np.eye(D))
    u = rng.normal(size=(T, 1))
    z, y = np.zeros((T, D)), np.zeros((T, D))
    for t in range(T):
        if t:
            z[t] = params["dynamics_weights"] @ z[t - 1] + params["dynamics_input_weights"] @ u[t] \
                + np.sqrt(0.1) * rng.normal(size=D)
        y[t] = params["emission_weights"] @ z[t] + np.sqrt(0.5) * rng.normal(size=D)
    return dict(params, emissions=y, inputs=u)


def _timed(fn, repeats):
    fn()                                                                     # compile
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * min(ts)


def worker_pyrxaif(data, repeats, em_iters):
    import jax
    import pyrxaif  # noqa: F401
    from pyrxaif.models import LinearGaussianSSM
    D = data["emissions"].shape[1]
    model = LinearGaussianSSM(D, D, 1)
    params = model.initialize(**{k: data[k] for k in data if k not in ("emissions", "inputs")})
    y, u = data["emissions"], data["inputs"]
    block = lambda x: jax.block_until_ready(x)                               # noqa: E731
    out = {"filter_ms": _timed(lambda: block(model.filter(params, y, u)), repeats),
           "smoother_ms": _timed(lambda: block(model.smoother(params, y, u)), repeats),
           "em_ms": _timed(lambda: model.fit_vb(params, y, u, num_iters=em_iters), max(1, repeats // 3))}
    return out, _outputs(model.filter(params, y, u), model.smoother(params, y, u))


def _outputs(filt, post):
    return dict(filter_loglik=float(filt.marginal_loglik), filtered_means=np.asarray(filt.filtered_means),
                loglik=float(post.marginal_loglik), smoothed_means=np.asarray(post.smoothed_means))


def worker_dynamax(data, repeats, em_iters):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from dynamax.linear_gaussian_ssm import LinearGaussianSSM, lgssm_filter, lgssm_smoother
    D = data["emissions"].shape[1]
    model = LinearGaussianSSM(D, D, 1)
    params, props = model.initialize(jax.random.PRNGKey(0), **{k: jnp.asarray(data[k]) for k in data
                                                                 if k not in ("emissions", "inputs")})
    y, u = jnp.asarray(data["emissions"]), jnp.asarray(data["inputs"])
    filt, smooth = jax.jit(lgssm_filter), jax.jit(lgssm_smoother)
    block = lambda x: jax.block_until_ready(x)                               # noqa: E731
    out = {"filter_ms": _timed(lambda: block(filt(params, y, u)), repeats),
           "smoother_ms": _timed(lambda: block(smooth(params, y, u)), repeats),
           "em_ms": _timed(lambda: block(model.fit_em(params, props, y, u, num_iters=em_iters, verbose=False)),
                           max(1, repeats // 3))}
    return out, _outputs(filt(params, y, u), smooth(params, y, u))


def check_lds(ours, theirs):
    """Refuse to print times unless both libraries' filter and smoother outputs agree."""
    for key in ("filter_loglik", "filtered_means", "loglik", "smoothed_means"):
        a, b = np.asarray(ours[1][key]), np.asarray(theirs[1][key])
        if not np.allclose(a, b, rtol=1e-6, atol=1e-6):
            raise SystemExit(f"outputs differ: {key}, max |difference| {np.max(np.abs(a - b)):.3g}")


PEERS = {"dynamax": dict(make=lds_data, workers={"pyrxaif": worker_pyrxaif, "dynamax": worker_dynamax},
                         check=check_lds, rows=("filter_ms", "smoother_ms", "em_ms"))}


# ------------------------------------------------------------------ driver
def run_worker(peer, name, data_file, args):
    cmd = [sys.executable, __file__, "--peer", peer, "--worker", name, "--data", data_file,
           "--repeats", str(args.repeats), "--em-iters", str(args.em_iters)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    if p.returncode:
        raise SystemExit(f"{name} worker failed ({p.returncode}):\n{p.stderr[-3000:]}")
    res = np.load(data_file + f".{name}.npz")
    return json.loads(str(res["times"])), {k: res[k] for k in res.files if k != "times"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", choices=sorted(PEERS), default="dynamax")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--em-iters", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if min(args.sizes) < 2 or min(args.dims) < 1 or args.repeats < 1 or args.em_iters < 1:
        ap.error("--sizes >= 2, --dims >= 1, --repeats >= 1, --em-iters >= 1")
    spec = PEERS[args.peer]
    if args.worker:                                                           # child process
        data = dict(np.load(args.data))
        times, outputs = spec["workers"][args.worker](data, args.repeats, args.em_iters)
        np.savez(args.data + f".{args.worker}.npz", times=json.dumps(times), **outputs)
        return
    peer = args.peer
    print(f"pyrxaif vs {peer} (float64, fastest of {args.repeats} warm calls, ms; {args.em_iters} EM iterations; "
          f"ratio = {peer} / pyrxaif; "
          f"load {os.getloadavg()[0]:.1f})")
    print(f"{'T':>6} {'D':>3} | " + " | ".join(f"{r[:-3]:>8} ours {peer[:7]:>7} ratio" for r in spec["rows"]))
    with tempfile.TemporaryDirectory() as tmp:
        for T in args.sizes:
            for D in args.dims:
                f = os.path.join(tmp, f"data_{T}_{D}.npz")
                np.savez(f, **spec["make"](T, D))
                ours = run_worker(peer, "pyrxaif", f, args)
                theirs = run_worker(peer, peer, f, args)
                spec["check"](ours, theirs)
                cells = [f"{ours[0][r]:13.2f} {theirs[0][r]:7.2f} {theirs[0][r] / ours[0][r]:5.2f}x" for r in spec["rows"]]
                print(f"{T:>6} {D:>3} | " + " | ".join(cells), flush=True)
    print(f"outputs checked equal (filter and smoother log-likelihoods, filtered and smoothed means, 1e-6) "
          f"before timing; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
