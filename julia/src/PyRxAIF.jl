"""
    PyRxAIF

The Julia engine of pyrxaif: RxInfer 5 models and custom ReactiveMP 6 nodes for active inference.

- `ControlledTransition` node `z′ ~ N([A B] [z; u], W⁻¹)` (continuous transition with a control
  input, Gaussian q(vec [A B]), Wishart q(W)) and the LDS learning / smoothing / planning models;
- `GoalObservation` node `[c, z, A]` with `BetheMeta` / `GFEMeta` (LAIF) and the T-maze model;
- channel kernels for EFE planning on grid-worlds (`nodes/channels.jl`) and the rollout planner
  `plan_rollout` (BP, VBP, RM-MP, AIF-MP, Nuijten-MP; `models/rollout.jl`);
- `py_*` entry points called from Python through juliacall (`src/bridge.jl`).

Array conventions: sequences are `(d, T)` matrices (one column per time step); `vec [A B]` is the
row-major vec (H[i, j] at index (i - 1) n + j), the same as the JAX engine.
"""
module PyRxAIF

using RxInfer
using ReactiveMP
using BayesBase
using ExponentialFamily
using Distributions
using LinearAlgebra
using SpecialFunctions: digamma
using LogExpFunctions: logsumexp, xlogx
import ForwardDiff

import ReactiveMP: @node, @rule, @marginalrule, @average_energy
import ReactiveMP: default_functional_dependencies, functional_dependencies, FunctionalDependencies
# WishartFast is not exported by ExponentialFamily 2.5 (src/distributions/wishart.jl exports only
# Wishart, WishartDistributionsFamily); ReactiveMP imports it by name the same way.
import ExponentialFamily: WishartFast

export ControlledTransition, ControlledTransitionMeta, GoalObservation, BetheMeta, GFEMeta, GoalObservationDependencies
export lds_model, lds_planning_model, linear_gaussian_planning_model, plan_linear_gaussian, tmaze_model, tmaze_policy_evaluation
export RolloutSpec, RolloutMethod, rollout_method, plan_rollout

include("nodes/gaussian.jl")
include("nodes/controlled_transition.jl")
include("nodes/goal_observation.jl")
include("nodes/channels.jl")
include("models/lds.jl")
include("models/tmaze.jl")
include("models/rollout.jl")
include("bridge.jl")

end # module
