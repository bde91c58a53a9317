"""The T-maze with the generalised-free-energy agent through ``Agent`` (LAIF §7.1, in pymdp's loop).

The agent does not know the observation matrix A: it starts from LAIF's Dirichlet prior (the cue's
meaning unknown) and learns it trial by trial (``agent.learn()`` after each two-move trial). A batch of
independent agents runs in lockstep (one vmapped call per step). Early on the agent visits the cue to
find out what it means; once A is learned it keeps visiting the cue (its information is worth more
than a guess) and then enters the cued arm, so the reward rate rises towards α = 0.9.

    python examples/tmaze_gfe_agent.py [--runs 8] [--trials 12]
"""

from __future__ import annotations

import argparse

import numpy as np

from pyrxaif.agents.pomdp_agent import Agent
from pyrxaif.envs.tmaze import CUE, RW, TMaze, observation_prior, tmaze_pomdp


def run(runs: int, trials: int, seed: int = 0, iterations: int = 20, burn_in: int = 5, num_samples: int = 10):
    """Returns (cue visited first, rewarded) as (runs, trials) bool arrays."""
    model = tmaze_pomdp(alpha=0.9, c=2.0)
    agent = Agent(model, method="gfe", horizon=2, pA=observation_prior(0.1), action_selection="stochastic",
                  gamma=10.0, iterations=iterations, burn_in=burn_in, num_samples=num_samples,
                  batch_size=runs, seed=seed)
    envs = [TMaze(alpha=0.9, moves=2) for _ in range(runs)]
    cue = np.zeros((runs, trials), bool)
    win = np.zeros((runs, trials), bool)
    for t in range(trials):
        agent.reset()
        x = np.array([e.reset(seed=seed * 100003 + t * runs + i)[0] for i, e in enumerate(envs)])
        for move in range(2):
            agent.infer_states(np.stack([x // 4, x % 4], axis=1))       # modalities: position, outcome
            agent.infer_policies()
            u = agent.sample_action()
            if move == 0:
                cue[:, t] = u == CUE
            x = np.array([e.step(int(a))[0] for e, a in zip(envs, u)])
            win[:, t] |= x % 4 == RW
        agent.infer_states(np.stack([x // 4, x % 4], axis=1))           # the last observation ...
        agent.learn()                                                   # ... then q(A) -> next prior
    return cue, win


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.runs < 1 or a.trials < 2:
        p.error("--runs: expected >= 1 and --trials: expected >= 2")
    cue, win = run(a.runs, a.trials, a.seed)
    half = a.trials // 2
    print(f"cue visited first, trials 1-{half}: {cue[:, :half].mean():.2f}, "
          f"trials {half + 1}-{a.trials}: {cue[:, half:].mean():.2f}")
    print(f"reward rate, trials 1-{half}: {win[:, :half].mean():.2f}, trials {half + 1}-{a.trials}: "
          f"{win[:, half:].mean():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
