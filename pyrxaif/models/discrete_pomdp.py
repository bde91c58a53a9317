"""Discrete POMDPs in pymdp's conventions, and their conversion to pyrxaif's planners.

Letters (one meaning each, as in pymdp):

* ``A[m]``  observation likelihood of modality m, shape ``(num_obs[m], *num_states)``:
  ``A[m][o, s_1, ..., s_F] = p(o_m = o | s)``; columns sum to one over axis 0.
* ``B[f]``  transitions of state factor f, shape ``(num_states[f], *[num_states[d] for d in
  B_dependencies[f]], num_controls[f])``: ``B[f][s', s_deps..., u_f] = p(s'_f | s_deps, u_f)``; by
  default ``B_dependencies[f] = [f]`` (pymdp's ``(s', s, u)``).
* ``C[m]``  log-preferences over the values of modality m, shape ``(num_obs[m],)`` (unnormalised;
  default zeros). ``C_states`` optionally adds log-preferences over states, shape ``num_states``.
* ``D[f]``  initial-state prior of factor f, shape ``(num_states[f],)`` (default uniform).
* ``E``     prior over joint actions, shape ``(prod(num_controls),)`` (default uniform; pymdp's ``E``
  is a prior over policies, which for one-step policies is this).

Parameter factors. ``parameter_factors`` lists state factors whose value is fixed during an
episode and unknown (a layout, a context, the T-maze's reward side): each has one control and the
identity transition. The planners treat them as the θ of a joint latent (x, θ): a plan's action
may depend on x but not on θ, so the value of learning θ is part of the plan (see
``pyrxaif.inference.rollout``).

Flattening. Inside, the non-parameter factors are flattened row-major into one state x
(S = Π num_states over them) and the parameter factors into θ (K values); the full state index is
z = x·K + θ, and the joint action is the row-major index over the non-parameter factors' controls.
Dense joint tensors have S·K·S·U entries, so the product state is limited to ``max_states``
(default 2**15) and the dense joint transition to ``MAX_TRANSITION_ENTRIES``; beyond that the
constructor refuses with a ValueError that says what to reduce.

Preferences for the planners. The EFE planners of ``pyrxaif.inference.rollout`` score states:
their log C(x, θ) is ``C_states`` plus Σ_m Σ_o A[m](o | x, θ) C[m](o) (each observation preference
turned into its expected value under the state's likelihood). The GFE/Bethe policy evaluation
(``pyrxaif.inference.policy``) scores observations: its goal distribution over the joint
observation o = (o_1, ..., o_M) (row-major) is softmax(Σ_m C[m](o_m)).

Example
-------
>>> import numpy as np
>>> from pyrxaif.models.discrete_pomdp import DiscretePOMDP
>>> A = [np.array([[0.9, 0.2], [0.1, 0.8]])]                   # 2 observations × 2 states
>>> B = [np.stack([np.eye(2), np.eye(2)[::-1]], axis=-1)]       # stay or swap
>>> model = DiscretePOMDP(A, B, C=[np.array([0.0, 2.0])])
>>> model.num_states, model.num_controls, model.num_obs
([2], [2], [2])
>>> round(float(model.state_log_preferences()[1, 0]), 3)
1.6
"""

from __future__ import annotations

import math
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pyrxaif import checks as V

__all__ = ["DiscretePOMDP", "JointTensors", "check_action", "check_actions", "check_observation", "MAX_STATES", "MAX_TRANSITION_ENTRIES", "MAX_JOINT_OBSERVATIONS"]

#: Default limit on the flattened product state (all factors, parameters included).
MAX_STATES = 2 ** 15
#: Limit on the entries of the dense joint transition tensor (S, U, S, K) built inside.
MAX_TRANSITION_ENTRIES = 2 ** 26
#: Limit on the joint observation (product of the modalities) that the GFE/Bethe evaluation uses.
MAX_JOINT_OBSERVATIONS = 2 ** 12

_ATOL = 1e-8


class JointTensors(NamedTuple):
    """A model over the full flattened state z = x·K + θ and the joint observation (GFE/Bethe input).

    ``A`` (O, n) p(o | z) for the joint observation o (row-major over modalities); ``B`` (U, n, n)
    p(z' | z, u) (column-stochastic per action); ``log_c`` (O,) normalised log goal probabilities;
    ``log_D`` (n,) log initial prior."""

    A: np.ndarray
    B: np.ndarray
    log_c: np.ndarray
    log_D: np.ndarray


def check_action(action, num_actions: int, name: str = "action") -> int:
    """An integer action in [0, num_actions): a Python, numpy or 0-d JAX integer (not a bool, not a float:
    2.7 is refused, never truncated)."""
    if isinstance(action, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer in [0, {num_actions}), got {action!r}")
    try:
        a = operator.index(action)
    except TypeError:
        raise TypeError(f"{name}: expected an integer in [0, {num_actions}), got {action!r}") from None
    if not 0 <= a < num_actions:
        raise ValueError(f"{name}: expected an integer in [0, {num_actions}), got {action!r}")
    return a


def check_actions(actions, num_actions: int, count: int, name: str = "action") -> np.ndarray:
    """``count`` actions, each as :func:`check_action` accepts it, as an int32 array (count,). An integer
    numpy array is checked in one vectorised pass (the agents' batched hot path), anything else
    element by element."""
    arr = actions if isinstance(actions, np.ndarray) else np.asarray(actions, dtype=object)
    arr = np.atleast_1d(arr)
    if arr.ndim != 1 or len(arr) != count:
        raise ValueError(f"{name}: expected {count} actions, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        bad = np.flatnonzero((arr < 0) | (arr >= num_actions))
        if bad.size:
            raise ValueError(f"{name}: expected an integer in [0, {num_actions}), got {arr[bad[0]]!r}")
        return arr.astype(np.int32)
    return np.array([check_action(a, num_actions, name) for a in arr], np.int32)


def check_observation(obs, sizes, name: str = "obs", batch: int | None = None) -> np.ndarray:
    """Observation indices, one per modality of sizes ``sizes``, as an int array (M,) (or (N, M) for a
    batch of N); a scalar is accepted for a single modality."""
    want = (len(sizes),) if batch is None else (batch, len(sizes))
    try:
        arr = np.asarray(obs)
    except ValueError:
        raise ValueError(f"{name}: expected shape {want} (one index per modality), got {obs!r}") from None
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected integer observation indices, got {obs!r} (dtype {arr.dtype})")
    if arr.shape == () and len(sizes) == 1 and batch is None:
        arr = arr.reshape(1)
    if arr.shape != want:
        raise ValueError(f"{name}: expected shape {want} (one index per modality), got {arr.shape}")
    if np.any(arr < 0) or np.any(arr >= np.asarray(sizes)):
        raise ValueError(f"{name}: expected indices below the modality sizes {list(sizes)}, got {obs!r}")
    return arr.astype(np.int64)


def _as_list(name: str, value) -> list:
    if isinstance(value, np.ndarray):
        return [value]
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise TypeError(f"{name}: expected a non-empty list of arrays (one per "
                        f"{'modality' if name in ('A', 'C') else 'factor'}), got {type(value).__name__}")
    return list(value)


def _array_module(arrays):
    """``jax.numpy`` when any of ``arrays`` is a JAX array (traced ones included), else NumPy."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def _check_stochastic(name: str, arr: np.ndarray) -> None:
    if np.any(arr < 0):
        raise ValueError(f"{name}: expected non-negative probabilities, found minimum {float(arr.min()):.3g}")
    sums = arr.sum(axis=0)
    if not np.allclose(sums, 1.0, atol=1e-6):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"{name}: expected columns (axis 0) that sum to one, largest deviation {worst:.3g}")


class DiscretePOMDP:
    """A discrete POMDP in pymdp's conventions; see the module docstring for the letters and limits.

    Parameters
    ----------
    A, B : lists of arrays (a single array is taken as a one-element list).
    C : list of (num_obs[m],) log-preferences, or None (zeros).
    D : list of (num_states[f],) probabilities, or None (uniform).
    E : (prod num_controls,) action prior, or None (uniform).
    C_states : log-preferences over states, shape ``num_states``, or None.
    B_dependencies : list of lists of factor indices (pymdp's name), or None (each factor on itself).
    parameter_factors : factors fixed during an episode (one control, identity transition).
    max_states : limit on the flattened product state.

    Examples
    --------
    A two-state world sensed through one noisy modality; action 0 stays, action 1 swaps the state:

    >>> import numpy as np
    >>> from pyrxaif.models.discrete_pomdp import DiscretePOMDP
    >>> A = [np.array([[0.9, 0.2], [0.1, 0.8]])]                  # A[0][o, s]
    >>> B = [np.stack([np.eye(2), np.eye(2)[::-1]], axis=-1)]      # B[0][s', s, u]
    >>> model = DiscretePOMDP(A, B, C=[np.array([0.0, 2.0])], D=[np.array([0.5, 0.5])])
    >>> model.num_states, model.num_controls, model.num_obs
    ([2], [2], [2])
    >>> DiscretePOMDP([np.array([[0.9, 0.2], [0.2, 0.8]])], B)     # columns must sum to one
    Traceback (most recent call last):
    ...
    ValueError: A[0]: ...
    """

    def __init__(self, A, B, C=None, D=None, *, E=None, C_states=None, B_dependencies=None,
                 parameter_factors=(), max_states: int = MAX_STATES):
        B = [V.as_float_array(f"B[{f}]", b) for f, b in enumerate(_as_list("B", B))]
        F = len(B)
        deps = [[f] for f in range(F)] if B_dependencies is None else B_dependencies
        if not (isinstance(deps, (list, tuple)) and len(deps) == F
                and all(isinstance(d, (list, tuple)) and len(d) >= 1 and len(set(d)) == len(d) for d in deps)
                and all(isinstance(i, (int, np.integer)) and 0 <= i < F for d in deps for i in d)):
            raise ValueError(f"B_dependencies: expected {F} non-empty lists of factor indices in [0, {F}), "
                             f"got {B_dependencies!r}")
        self.B_dependencies = [[int(i) for i in d] for d in deps]
        for f, b in enumerate(B):
            if b.ndim != len(self.B_dependencies[f]) + 2:
                raise ValueError(f"B[{f}]: expected {len(self.B_dependencies[f]) + 2} axes (s', "
                                 f"{len(self.B_dependencies[f])} dependencies, u), got shape {b.shape}")
        self.num_states = [int(b.shape[0]) for b in B]
        self.num_controls = [int(b.shape[-1]) for b in B]
        for f, b in enumerate(B):
            want = (self.num_states[f],) + tuple(self.num_states[d] for d in self.B_dependencies[f]) \
                + (self.num_controls[f],)
            if b.shape != want:
                raise ValueError(f"B[{f}]: expected shape {want} from the factors' sizes, got {b.shape}")
            _check_stochastic(f"B[{f}]", b)
        if not (isinstance(max_states, (int, np.integer)) and max_states >= 1):
            raise ValueError(f"max_states: expected a positive integer, got {max_states!r}")
        n_total = math.prod(self.num_states)
        if n_total > max_states:
            raise ValueError(f"num_states: the flattened product state of factors {self.num_states} has "
                             f"{n_total} states, above max_states = {max_states}; DiscretePOMDP keeps dense "
                             "tensors over the product state: use fewer or smaller factors (or raise max_states "
                             "if the memory allows)")
        params = sorted({int(f) for f in parameter_factors}) if parameter_factors is not None else []
        if any(not 0 <= f < F for f in params) or (params and len(params) == F):
            raise ValueError(f"parameter_factors: expected indices in [0, {F}) leaving at least one ordinary "
                             f"factor, got {parameter_factors!r}")
        for f in params:
            if (self.B_dependencies[f] != [f] or self.num_controls[f] != 1
                    or not np.array_equal(B[f][:, :, 0], np.eye(self.num_states[f]))):
                raise ValueError(f"parameter_factors: factor {f} must keep its value (B[{f}] of shape "
                                 f"({self.num_states[f]}, {self.num_states[f]}, 1) equal to the identity, "
                                 "depending only on itself)")
        self.parameter_factors = params
        self.state_factors = [f for f in range(F) if f not in params]
        U = math.prod(self.num_controls[f] for f in self.state_factors)
        S = math.prod(self.num_states[f] for f in self.state_factors)
        K = math.prod(self.num_states[f] for f in params) if params else 1
        if S * S * K * U > MAX_TRANSITION_ENTRIES:
            raise ValueError(f"num_states: the dense joint transition has {S}·{S}·{K}·{U} = {S * S * K * U} "
                             f"entries, above {MAX_TRANSITION_ENTRIES}; use fewer or smaller factors or controls")
        self.B = B

        A = [V.as_float_array(f"A[{m}]", a) for m, a in enumerate(_as_list("A", A))]
        for m, a in enumerate(A):
            if a.shape[1:] != tuple(self.num_states):
                raise ValueError(f"A[{m}]: expected shape (num_obs, {', '.join(map(str, self.num_states))}) "
                                 f"(the factors' sizes from B), got {a.shape}")
            _check_stochastic(f"A[{m}]", a)
        self.A = A
        self.num_obs = [int(a.shape[0]) for a in A]

        if C is None:
            C = [np.zeros(o) for o in self.num_obs]
        C = [V.as_float_array(f"C[{m}]", c) for m, c in enumerate(_as_list("C", C))]
        if [c.shape for c in C] != [(o,) for o in self.num_obs]:
            raise ValueError(f"C: expected {len(self.num_obs)} finite vectors of sizes {self.num_obs}, "
                             f"got shapes {[c.shape for c in C]}")
        self.C = C
        self.C_states = None if C_states is None else V.as_float_array("C_states", C_states,
                                                                        shape=tuple(self.num_states))
        if D is None:
            D = [np.full(n, 1.0 / n) for n in self.num_states]
        D = [V.as_float_array(f"D[{f}]", d) for f, d in enumerate(_as_list("D", D))]
        if [d.shape for d in D] != [(n,) for n in self.num_states]:
            raise ValueError(f"D: expected {F} vectors of sizes {self.num_states}, got shapes {[d.shape for d in D]}")
        for f, d in enumerate(D):
            _check_stochastic(f"D[{f}]", d)
        self.D = D
        self.E = np.full(U, 1.0 / U) if E is None else V.check_probability_vectors(
            "E", V.as_float_array("E", E, shape=(U,)))
        self._rollout = None

    # -- sizes ----------------------------------------------------------------------------------
    @property
    def num_modalities(self) -> int:
        return len(self.A)

    @property
    def num_factors(self) -> int:
        return len(self.B)

    @property
    def num_actions(self) -> int:
        """Number of joint actions U (row-major over the ordinary factors' controls)."""
        return self.E.shape[0]

    @property
    def flat_sizes(self) -> tuple[int, int]:
        """(S, K): sizes of the flattened ordinary state x and of the parameter θ."""
        S = math.prod(self.num_states[f] for f in self.state_factors)
        K = math.prod(self.num_states[f] for f in self.parameter_factors) if self.parameter_factors else 1
        return S, K

    # -- flattening -----------------------------------------------------------------------------
    def _to_xk(self, arr, lead: int = 0, xp=np):
        """Move the factor axes (after ``lead`` leading axes) into (x, θ) order and flatten: (..., S, K)
        (``xp``: the array module, NumPy or ``jax.numpy``)."""
        S, K = self.flat_sizes
        order = list(range(lead)) + [lead + f for f in self.state_factors + self.parameter_factors]
        return xp.transpose(arr, order).reshape(arr.shape[:lead] + (S, K))

    def action_index(self, controls) -> int:
        """Joint action index of per-factor controls (one per ordinary factor)."""
        sizes = [self.num_controls[f] for f in self.state_factors]
        c = np.asarray(controls)
        if c.shape != (len(sizes),) or not np.issubdtype(c.dtype, np.integer) or np.any(c < 0) or np.any(c >= sizes):
            raise ValueError(f"controls: expected {len(sizes)} integers below {sizes}, got {controls!r}")
        return int(np.ravel_multi_index(tuple(c), sizes))

    def action_controls(self, action) -> list[int]:
        """Per-factor controls of a joint action index (all factors; 0 for the parameter factors)."""
        u = check_action(action, self.num_actions)
        sizes = [self.num_controls[f] for f in self.state_factors]
        out = [0] * self.num_factors
        for f, c in zip(self.state_factors, np.unravel_index(u, sizes)):
            out[f] = int(c)
        return out

    def state_marginals(self, q_xk: np.ndarray) -> list[np.ndarray]:
        """Per-factor marginals (list of (num_states[f],)) of a belief over (x, θ) of shape (..., S, K)."""
        q = np.asarray(q_xk)
        lead = q.shape[:-2]
        sizes = [self.num_states[f] for f in self.state_factors + self.parameter_factors]
        full = q.reshape(lead + tuple(sizes))
        order = self.state_factors + self.parameter_factors
        out = [None] * self.num_factors
        for i, f in enumerate(order):
            axes = tuple(len(lead) + j for j in range(len(order)) if j != i)
            out[f] = full.sum(axis=axes)
        return out

    def dense_transitions(self) -> np.ndarray:
        """p(x' | x, θ, u) as a dense (S', S, K, U) array (the ordinary factors' product)."""
        F, S_all = self.num_factors, self.num_states
        ords = self.state_factors
        uc = [self.num_controls[f] for f in ords]
        # grid axes: [x'_f for f in ords] + [s_g for g in 0..F-1] + [u_f for f in ords]
        n_new, n_ctrl = len(ords), len(ords)
        out = np.ones([S_all[f] for f in ords] + list(S_all) + uc)
        for i, f in enumerate(ords):
            shape = [1] * (n_new + F + n_ctrl)
            shape[i] = S_all[f]
            b = self.B[f]
            # b axes (s'_f, s_deps..., u_f): the dependencies in factor order, then broadcast into the grid
            deps = self.B_dependencies[f]
            b = np.transpose(b, [0] + [1 + deps.index(d) for d in sorted(deps)] + [b.ndim - 1])
            for d in sorted(deps):
                shape[n_new + d] = S_all[d]
            shape[n_new + F + i] = uc[i]
            out = out * b.reshape(shape)
        S, K = self.flat_sizes
        U = self.num_actions
        out = out.reshape((S,) + tuple(S_all) + (U,))
        out = np.moveaxis(out, -1, 1)                      # (S', U, s_1..s_F)
        out = self._to_xk(out, lead=2)                     # (S', U, S, K)
        return np.ascontiguousarray(np.transpose(out, (0, 2, 3, 1)))

    def flat_observations(self) -> list[np.ndarray]:
        """Per-modality likelihoods p(o_m | x, θ) as (S, K, num_obs[m]) arrays."""
        return self._flat_likelihoods(self.A, np)

    def _flat_likelihoods(self, A, xp) -> list:
        """Per-modality ``A`` (the model's shapes) as (S, K, num_obs[m]) arrays of the module ``xp``."""
        return [xp.moveaxis(self._to_xk(a, lead=1, xp=xp), 0, -1) for a in A]

    def flat_state_preferences(self) -> np.ndarray:
        """``C_states`` over (x, θ) as an (S, K) array (zeros when the model has none)."""
        return np.zeros(self.flat_sizes) if self.C_states is None else self._to_xk(self.C_states)

    def state_log_preferences(self) -> np.ndarray:
        """log C(x, θ) (S, K) for the EFE planners: C_states + Σ_m Σ_o A[m](o|x,θ) C[m](o)."""
        out = self.flat_state_preferences()
        for a, c in zip(self.flat_observations(), self.C):
            out = out + a @ c
        return out

    def initial_prior(self) -> np.ndarray:
        """D over (x, θ) as an (S, K) probability array (the product of the factors' D)."""
        full = self.D[0]
        for d in self.D[1:]:
            full = np.multiply.outer(full, d)
        return self._to_xk(np.asarray(full))

    # -- conversions ----------------------------------------------------------------------------
    def rollout_model(self):
        """The ``pyrxaif.inference.rollout.RolloutModel`` of this POMDP (EFE planners and exact filter).

        Successors of (x, u) are the union over θ of the states with positive probability, sorted,
        padded with x itself (probability 0)."""
        if self._rollout is None:
            from pyrxaif.inference.rollout import rollout_model  # noqa: PLC0415

            dense = self.dense_transitions()                 # (S', S, K, U)
            S, K = self.flat_sizes
            U = self.num_actions
            support = np.any(dense > 0, axis=2)              # (S', S, U)
            J = int(support.sum(axis=0).max())
            succ = np.zeros((S, U, J), np.int32)
            Bs = np.zeros((S, U, J, K))
            for x in range(S):
                for u in range(U):
                    nxt = np.flatnonzero(support[:, x, u])
                    succ[x, u, :len(nxt)] = nxt
                    succ[x, u, len(nxt):] = x
                    Bs[x, u, :len(nxt)] = dense[nxt, x, :, u]
            self._rollout = rollout_model(succ, Bs, self.flat_observations(), self.state_log_preferences(), self.E)
        return self._rollout

    def joint_tensors(self) -> JointTensors:
        """The model over the full state z = x·K + θ and the joint observation (GFE/Bethe evaluation)."""
        with np.errstate(divide="ignore"):
            log_D = np.log(self.initial_prior().reshape(-1))
        return JointTensors(self.joint_likelihood(), self.joint_transitions(), self.joint_log_goal(), log_D)

    def joint_likelihood(self, A=None):
        """p(o | z) (O, n) of the joint observation o (row-major over the modalities) and the full state
        z = x·K + θ, from the model's A or from ``A``: one array per modality of the model's shapes.

        ``A`` may hold JAX arrays, traced ones included (inside ``jit``/``vmap``: an observation model that
        depends on a traced value); then the result is a JAX array and only the shapes are checked (the
        columns of concrete arrays are checked to sum to one)."""
        A = self.A if A is None else self._replacement("A", A, [a.shape for a in self.A])
        xp = _array_module(A)
        S, K = self._joint_observation_sizes()
        n = S * K
        out = xp.ones((1, n))
        for a in self._flat_likelihoods(A, xp):
            flat = a.reshape(n, -1)                                                     # (n, num_obs[m])
            out = (out[:, None, :] * flat.T[None, :, :]).reshape(-1, n)
        return out

    def joint_log_goal(self, C=None):
        """Normalised log goal probabilities (O,) over the joint observation: log softmax(Σ_m C[m](o_m)),
        from the model's C or from ``C`` (one vector per modality; JAX arrays, traced ones included, give a
        JAX array, as in :meth:`joint_likelihood`)."""
        C = self.C if C is None else self._replacement("C", C, [c.shape for c in self.C])
        xp = _array_module(C)
        self._joint_observation_sizes()
        c = xp.zeros(())
        for cm in C:
            c = c[..., None] + cm
        c = c.reshape(-1)
        return jax.nn.log_softmax(c) if xp is jnp else c - np.logaddexp.reduce(c)

    def _joint_observation_sizes(self) -> tuple[int, int]:
        """(S, K), after refusing a joint observation above MAX_JOINT_OBSERVATIONS."""
        O = math.prod(self.num_obs)
        if O > MAX_JOINT_OBSERVATIONS:
            raise ValueError(f"A: the joint observation of modalities {self.num_obs} has {O} values, above "
                             f"{MAX_JOINT_OBSERVATIONS}; the GFE/Bethe evaluation uses one joint modality")
        return self.flat_sizes

    def _replacement(self, name: str, arrays, shapes: list) -> list:
        """Arrays that stand in for the model's ``name`` (A or C) in a joint tensor: a list of one array per
        modality of ``shapes``; concrete A columns must sum to one (traced values cannot be checked)."""
        arrays = [a if isinstance(a, jax.Array) else np.asarray(a, dtype=np.float64) for a in _as_list(name, arrays)]
        got = [tuple(a.shape) for a in arrays]
        if got != [tuple(s) for s in shapes]:
            raise ValueError(f"{name}: expected {len(shapes)} arrays (one per modality) of shapes "
                             f"{[tuple(s) for s in shapes]}, got shapes {got}")
        if name == "A":
            for m, a in enumerate(arrays):
                if not isinstance(a, jax.core.Tracer):
                    _check_stochastic(f"A[{m}]", np.asarray(a))
        return arrays

    def joint_transitions(self) -> np.ndarray:
        """p(z' | z, u) over the full state z = x·K + θ as a dense (U, n, n) array (θ' = θ)."""
        S, K = self.flat_sizes
        dense = self.dense_transitions()                     # (S', S, K, U)
        Bz = np.zeros((self.num_actions, S, K, S, K))
        for k in range(K):
            Bz[:, :, k, :, k] = np.transpose(dense[:, :, k, :], (2, 0, 1))
        return Bz.reshape(self.num_actions, S * K, S * K)

    def __repr__(self) -> str:
        return (f"DiscretePOMDP(num_obs={self.num_obs}, num_states={self.num_states}, "
                f"num_controls={self.num_controls}, parameter_factors={self.parameter_factors})")
