"""A POMDP of your own, planned with AIF-MP and with BP: test before you treat.

A patient is sick or healthy (a parameter factor θ: fixed during an episode, unknown to the agent).
The clinician's stage is waiting, tested, treated, discharged, referred or done; the actions are test,
treat, discharge and refer (treated, discharged and referred lead to done, which ends the episode). A test
reports positive/negative, right with probability 0.95. Preferences are over states (C_states), collected
once on entering: treating the sick +3, the healthy −3; discharging the healthy +3, the sick −6;
referring +2 whatever θ; a test costs 0.1.

BP (sum-product planning, "planning as inference") has no value for information and is optimistic
about θ: on the prior it scores treating blind log(½e³ + ½e⁻³) = 2.31 > 2, so it treats (or
discharges) blind and collects 0 (or −1.5) on average. AIF-MP's observation channels give the test its
epistemic value: it tests first, then treats or discharges on the result and collects about 2.5.

    python examples/pomdp_aif_vs_bp.py [--episodes 40]
"""

from __future__ import annotations

import argparse

import numpy as np

from pyrxaif.agents.pomdp_agent import Agent
from pyrxaif.models.discrete_pomdp import DiscretePOMDP

WAITING, TESTED, TREATED, DISCHARGED, REFERRED, DONE = range(6)
TEST, TREAT, DISCHARGE, REFER = range(4)
HEALTHY, SICK = range(2)
NONE, POSITIVE, NEGATIVE = range(3)


def clinic_model(accuracy: float = 0.95) -> DiscretePOMDP:
    """The clinic as a DiscretePOMDP: factors stage (6, controlled) and θ (2, parameter factor)."""
    # B[0][stage', stage, action]: from waiting/tested an action moves to its stage; the outcomes lead to done
    B_stage = np.zeros((6, 6, 4))
    for s in range(6):
        for u, target in ((TEST, TESTED), (TREAT, TREATED), (DISCHARGE, DISCHARGED), (REFER, REFERRED)):
            B_stage[target if s in (WAITING, TESTED) else DONE, s, u] = 1.0
    B_theta = np.eye(2)[:, :, None]                               # θ keeps its value
    # A[0]: the stage, observed exactly; A[1]: the test result, informative only when tested
    A_stage = np.broadcast_to(np.eye(6)[:, :, None], (6, 6, 2)).copy()
    A_result = np.zeros((3, 6, 2))
    A_result[NONE] = 1.0
    A_result[:, TESTED, SICK] = [0.0, accuracy, 1 - accuracy]
    A_result[:, TESTED, HEALTHY] = [0.0, 1 - accuracy, accuracy]
    C_states = np.zeros((6, 2))
    C_states[TESTED] = -0.1
    C_states[TREATED] = [-3.0, 3.0]
    C_states[DISCHARGED] = [3.0, -6.0]
    C_states[REFERRED] = 2.0
    D = [np.eye(6)[WAITING], np.array([0.5, 0.5])]
    return DiscretePOMDP([A_stage, A_result], [B_stage, B_theta], D=D, C_states=C_states, parameter_factors=[1])


def run(method: str, episodes: int, horizon: int = 3, seed: int = 0):
    """Episodes with the true θ drawn from D; returns (fraction testing first, mean preference collected)."""
    model = clinic_model()
    jt = model.joint_tensors()                                    # z = stage·2 + θ; o = stage·3 + result
    agent = Agent(model, method=method, horizon=horizon, n_iter=16)
    rng = np.random.default_rng(seed)
    tested_first, score = 0, 0.0
    for _ in range(episodes):
        agent.reset()
        z = int(rng.choice(jt.log_D.size, p=np.exp(jt.log_D)))
        for t in range(6):
            o = int(rng.choice(jt.A.shape[0], p=jt.A[:, z]))
            agent.infer_states(list(np.unravel_index(o, model.num_obs)))
            agent.infer_policies()
            u = agent.sample_action()
            tested_first += int(t == 0 and u == TEST)
            z = int(rng.choice(jt.B.shape[1], p=jt.B[u][:, z]))
            stage, theta = divmod(z, 2)
            score += model.C_states[stage, theta]
            if stage in (TREATED, DISCHARGED, REFERRED):
                break
    return tested_first / episodes, score / episodes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=40)
    a = p.parse_args(argv)
    if a.episodes < 1:
        p.error("--episodes: expected a positive integer")
    for method in ("aif-mp", "bp"):
        first, score = run(method, a.episodes)
        print(f"{method:7s} tests first: {first:.2f}   mean preference collected: {score:+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
