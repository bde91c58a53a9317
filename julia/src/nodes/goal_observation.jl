# GoalObservation node [c, z, A] (LAIF): the goal prior Cat(x | c) faces the observation model
# Cat(x | A z); the observation x is internal to the node (not an edge) and travels in the meta:
# a one-hot vector when observed, `nothing` for a future step. Notation: s = q(z), d = incoming
# message on z, Ā = E[A], L̄ = E[log A], ℓ = E[log c], h(A)_j = −Σ_i A_ij log A_ij, h̄ = E[h(A)].
#
# Bethe (BetheMeta), x missing: x̂ = σ(L̄s + ℓ); to z: σ(L̄ᵀx̂); to A: MatrixDir(x̂sᵀ + 1);
#   U = −log Σ_i exp[(L̄s)_i + ℓ_i]   (the same rules as the JAX engine, docs/DESIGN).
# Observed x (either meta): to z: σ(L̄ᵀx); to A: x sᵀ + 1; to c: x + 1; U = −xᵀ(L̄s + ℓ).
# Generalised (GFEMeta), x missing: U_G = sᵀh̄ − (Ās)ᵀ(ℓ − log Ās); to c: Dirichlet(Ās + 1);
#   to z: s* = σ(−h̄ + Āᵀℓ − Āᵀ log(Ās*) + log d) by Newton (log space, ForwardDiff Jacobian),
#   send s*/d. The non-conjugate GFE message to A is not sent (see docs/julia.md): with GFEMeta,
#   A learns from observed nodes only (the JAX engine estimates that message by importance sampling).
#
# Functional dependencies (GoalObservationDependencies): the message to z needs the incoming
# message d on z (started from a given message, e.g. a uniform Categorical, so the loop through
# the node can start); the message to A needs q(A) itself, since the Bethe x̂ of a missing outcome
# uses L̄ = E[log A] (as ReactiveMP's ContinuousTransition asks for q(a) in its message to a).

struct GoalObservation end

@node GoalObservation Stochastic [c, z, A]

"Bethe free energy objective; `x` = one-hot observation or `nothing` (missing)."
struct BetheMeta{X}
    x::X
end
BetheMeta() = BetheMeta(nothing)

"Generalised free energy objective (LAIF); `x` = one-hot observation or `nothing`; Newton steps."
struct GFEMeta{X}
    x::X
    newton_iterations::Int
end
GFEMeta(x = nothing; newton_iterations::Int = 20) = GFEMeta(x, newton_iterations)

const GoalObservationMeta = Union{BetheMeta, GFEMeta}

"""
    GoalObservationDependencies(; z = nothing)

Functional dependencies of a GoalObservation node: the message to `z` uses the incoming message on
`z` (initialised with `z` unless `nothing`), the message to `A` uses q(A); `c` as by default.
"""
struct GoalObservationDependencies{Z} <: FunctionalDependencies
    z_init::Z
end
GoalObservationDependencies(; z = nothing) = GoalObservationDependencies(z)

function functional_dependencies(deps::GoalObservationDependencies, factornode, interface, iindex)
    strategy = ReactiveMP.name(interface) === :A ? RequireMarginalFunctionalDependencies(A = nothing) :
        RequireMessageFunctionalDependencies(z = deps.z_init)
    return functional_dependencies(strategy, factornode, interface, iindex)
end

default_functional_dependencies(::Type{<:GoalObservation}) = GoalObservationDependencies()

const LOG_FLOOR = -30.0
normalize_logits(v) = v .- logsumexp(v)
probs_from_logits(v) = exp.(normalize_logits(v))
safelog(p) = log(max(p, exp(LOG_FLOOR)))

"h(A)_j = −Σ_i A_ij log A_ij (0 log 0 = 0)."
column_entropy(A) = vec(-sum(xlogx.(A); dims = 1))

"(Ā, L̄, h̄) of q(A): exact for a DirichletCollection (matrix Dirichlet), direct for a point mass."
function a_stats(q::DirichletCollection)
    α = q.α
    α0 = sum(α; dims = 1)
    Abar = α ./ α0
    Lbar = digamma.(α) .- digamma.(α0)
    hbar = vec(-sum(Abar .* (digamma.(α .+ 1) .- digamma.(α0 .+ 1)); dims = 1))
    return Abar, Lbar, hbar
end
function a_stats(q::PointMass)
    A = mean(q)
    return A, max.(log.(A), LOG_FLOOR), column_entropy(A)
end

"ℓ = E[log c]: log of a point-mass probability vector (floored), ψ(α) − ψ(Σα) for a Dirichlet."
expected_log_c(q::PointMass) = safelog.(mean(q))
expected_log_c(q::Dirichlet) = digamma.(q.alpha) .- digamma(sum(q.alpha))

bethe_internal_x(s, Lbar, logc) = probs_from_logits(Lbar * s + logc)
bethe_message_z(s, Lbar, logc) = probs_from_logits(Lbar' * bethe_internal_x(s, Lbar, logc))
bethe_message_A(s, Lbar, logc) = bethe_internal_x(s, Lbar, logc) * s' .+ 1
bethe_message_c(s, Lbar, logc) = bethe_internal_x(s, Lbar, logc) .+ 1
bethe_average_energy(s, Lbar, logc) = -logsumexp(Lbar * s + logc)

observed_message_z(x, Lbar) = probs_from_logits(max.(Lbar, LOG_FLOOR)' * x)
observed_message_A(x, s) = x * s' .+ 1
observed_message_c(x) = x .+ 1
observed_average_energy(x, s, Lbar, logc) = -dot(x, max.(Lbar, LOG_FLOOR) * s + logc)

function gfe_average_energy(s, Abar, hbar, logc)
    p = Abar * s
    return dot(s, hbar) - dot(p, logc - safelog.(p))
end
gfe_message_c(s, Abar) = Abar * s .+ 1
gfe_logits(s, Abar, hbar, logc) = -hbar + Abar' * logc - Abar' * safelog.(Abar * s)

"s* = σ(−h̄ + Āᵀℓ − Āᵀ log(Ās*) + log d) by Newton on u = log s, g(u) = u − log σ(f(σ(u)) + log d)."
function gfe_marginal_z_newton(logd, s0, Abar, hbar, logc; iterations::Int = 20)
    logd = max.(logd, LOG_FLOOR)
    g(u) = u - normalize_logits(gfe_logits(probs_from_logits(u), Abar, hbar, logc) + logd)
    u = normalize_logits(safelog.(s0))
    for _ in 1:iterations
        J = ForwardDiff.jacobian(g, u)
        unew = u - J \ g(u)
        u = all(isfinite, unew) ? normalize_logits(max.(unew, 2 * LOG_FLOOR)) : u
    end
    return probs_from_logits(u)
end

function gfe_message_z_newton(logd, s0, Abar, hbar, logc; iterations::Int = 20)
    s = gfe_marginal_z_newton(logd, s0, Abar, hbar, logc; iterations = iterations)
    return probs_from_logits(safelog.(s) - max.(logd, LOG_FLOOR))
end

"q(z) ∝ d ⊙ σ(L̄ᵀ x̂(q(z))): the Bethe node's own fixed point given the incoming message d."
function bethe_marginal_z(d, Lbar, logc; iterations::Int = 50)
    s = d / sum(d)
    for _ in 1:iterations
        s = normalize(d .* bethe_message_z(s, Lbar, logc), 1)
    end
    return s
end

categorical(p) = Categorical(normalize(max.(p, floatmin(Float64)), 1); check_args = false)

# --- messages to z ------------------------------------------------------------------------------
@rule GoalObservation(:z, Marginalisation) (m_z::Categorical, q_c::Any, q_A::Any, meta::BetheMeta) = begin
    _, Lbar, _ = a_stats(q_A)
    meta.x === nothing || return categorical(observed_message_z(meta.x, Lbar))
    logc = expected_log_c(q_c)
    s = bethe_marginal_z(probvec(m_z), Lbar, logc)
    return categorical(bethe_message_z(s, Lbar, logc))
end

@rule GoalObservation(:z, Marginalisation) (m_z::Categorical, q_c::Any, q_A::Any, meta::GFEMeta) = begin
    Abar, Lbar, hbar = a_stats(q_A)
    meta.x === nothing || return categorical(observed_message_z(meta.x, Lbar))
    d = probvec(m_z)
    ρ = gfe_message_z_newton(safelog.(d), d / sum(d), Abar, hbar, expected_log_c(q_c); iterations = meta.newton_iterations)
    return categorical(ρ)
end

# --- messages to A and c ------------------------------------------------------------------------
"Concentrations of the message to A: x sᵀ + 1 (observed), x̂ sᵀ + 1 (Bethe, missing), 1 (GFE, missing)."
function message_A_concentration(meta::GoalObservationMeta, s, q_c, q_A)
    meta.x === nothing || return observed_message_A(meta.x, s)
    meta isa BetheMeta || return ones(length(expected_log_c(q_c)), length(s))
    _, Lbar, _ = a_stats(q_A)
    return bethe_message_A(s, Lbar, expected_log_c(q_c))
end

@rule GoalObservation(:A, Marginalisation) (q_c::Any, q_z::Categorical, q_A::Any, meta::GoalObservationMeta) =
    DirichletCollection(message_A_concentration(meta, probvec(q_z), q_c, q_A))

@rule GoalObservation(:c, Marginalisation) (q_z::Categorical, q_A::Any, meta::GoalObservationMeta) = begin
    meta.x === nothing || return Dirichlet(observed_message_c(meta.x))
    meta isa GFEMeta || error("GoalObservation: the Bethe message to c with x missing needs E[log c]; pass c as data")
    Abar, _, _ = a_stats(q_A)
    return Dirichlet(gfe_message_c(probvec(q_z), Abar))
end

# --- average energy -----------------------------------------------------------------------------
@average_energy GoalObservation (q_c::Any, q_z::Categorical, q_A::Any, meta::BetheMeta) = begin
    s = probvec(q_z)
    _, Lbar, _ = a_stats(q_A)
    logc = expected_log_c(q_c)
    meta.x === nothing ? bethe_average_energy(s, Lbar, logc) : observed_average_energy(meta.x, s, Lbar, logc)
end

@average_energy GoalObservation (q_c::Any, q_z::Categorical, q_A::Any, meta::GFEMeta) = begin
    s = probvec(q_z)
    Abar, Lbar, hbar = a_stats(q_A)
    logc = expected_log_c(q_c)
    meta.x === nothing ? gfe_average_energy(s, Abar, hbar, logc) : observed_average_energy(meta.x, s, Lbar, logc)
end
