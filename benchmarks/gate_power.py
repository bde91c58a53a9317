"""What the closed-loop gate's size buys: for a model whose trials succeed independently with rate p, the
chance that it passes the gate yet misses the evaluation's bar on 10 episodes, at its worst over p, and the
chance that a good model is refused (20 trials at 90 %: the pendulum's gate; 60 at 97.5 %: the digits').
Exact binomial sums (pyrxaif.agents.pixel_tasks.required_successes).

    python benchmarks/gate_power.py
"""

from fractions import Fraction
from math import comb

from pyrxaif.agents.pixel_tasks import required_successes

EVAL_EPISODES = 10


def at_least(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) ≥ k)."""
    return sum(comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(max(k, 0), n + 1))


def main():
    grid = [i / 1000 for i in range(1001)]
    print("bar   gate (trials, confidence)  needs   worst P(pass gate, miss eval) at p   "
          "P(refused | p = 1, 0.97, 0.95, 0.9)")
    for share in (Fraction(4, 5), Fraction(3, 5)):
        eval_needs = required_successes(EVAL_EPISODES, share)
        for trials, confidence in ((10, None), (20, None), (20, 0.8), (20, 0.9), (20, 0.95), (30, 0.9), (60, 0.9),
                                   (60, 0.975), (100, 0.975)):
            k = required_successes(trials, share, confidence)
            joint = [(at_least(k, trials, p) * (1 - at_least(eval_needs, EVAL_EPISODES, p)), p) for p in grid]
            worst, where = max(joint)
            refused = ", ".join(f"{1 - at_least(k, trials, p):.3f}" for p in (1.0, 0.97, 0.95, 0.9))
            gate = f"{trials}, {'point bar' if confidence is None else confidence}"
            print(f"{float(share):.0%}   {gate:<26} {k:>2}/{trials}   {worst:.3f} at p = {where:.2f}"
                  f"{'':<14}{refused}")


if __name__ == "__main__":
    main()
