# Channel-corrected kernels for EFE planning by message passing on grid-worlds (log space).
#
# This is the documented RxInfer-side equivalent of the JAX rollout nodes: the corrected kernels
# are array functions with the JAX engine's index order and equations (pyrxaif.rules.channels),
# checked against the same golden vectors. A rollout built from RxInfer's `DiscreteTransition`
# uses `exp.(dynamics_log_kernel(...))` (normalised per (x, u)) as its transition tensor; the
# channel fixed points are recomputed between inference calls (see docs/julia.md).
#
# Shapes: S states, A actions, J successors, K layouts, M modalities, Y observation values.
# log_T (S,A,J,K) sparse successor log-probabilities (−Inf padding); channels floored at CH_FLOOR.

const CH_FLOOR = -700.0
chsafe(x) = max.(x, CH_FLOOR)

"Σ over `dims` in log space, keeping the dimensions (−Inf when all entries are −Inf)."
function lse(x; dims)
    m = maximum(x; dims = dims)
    mfin = ifelse.(isfinite.(m), m, zero(eltype(m)))
    return log.(sum(exp.(x .- mfin); dims = dims)) .+ mfin
end

"log p(a|b) = log p(a,b) − log Σ_a p(a,b); rows without mass take `fallback`."
function log_conditional(logjoint, dims, fallback)
    lognorm = lse(logjoint; dims = dims)
    ok = isfinite.(lognorm)
    return ifelse.(ok, logjoint .- ifelse.(ok, lognorm, 0.0), fallback)
end

"log K(x,u,j,θ) = log T + log π(u) [+ log r(u|x)] [− log r(x′_j|x,u)]; zeros of T stay −Inf."
function dynamics_log_kernel(log_T, log_pi; log_r_u = nothing, log_r_x = nothing)
    k = log_T .+ reshape(log_pi, 1, :, 1, 1)
    log_r_u === nothing || (k = k .+ reshape(chsafe(log_r_u), size(log_r_u)..., 1, 1))
    log_r_x === nothing || (k = k .- reshape(chsafe(log_r_x), size(log_r_x)..., 1))
    return ifelse.(isfinite.(log_T), k, -Inf)
end

"log ℓ(x,θ) = Σ_k log Σ_y B_k(y|x,θ) r_k(y|x,θ)² / ρ_k(y|x): log_B, log_r_y (M,S,K,Y), log_rho (M,S,Y) → (S,K)."
function observation_log_message(log_B, log_r_y, log_rho)
    M, S, K, Y = size(log_B)
    t = log_B .+ 2 .* chsafe(log_r_y) .- reshape(chsafe(log_rho), M, S, 1, Y)
    t = ifelse.(isfinite.(log_B), t, -Inf)
    return dropdims(sum(lse(t; dims = 4); dims = 1); dims = (1, 4))
end

"log p̃(x,θ) = Σ_k Σ_y B (2 log B − log ρ) (Nuijten-MP's epistemic prior) → (S,K)."
function epistemic_log_prior(log_B, log_rho)
    M, S, K, Y = size(log_B)
    p = exp.(log_B)
    t = ifelse.(p .> 0, p .* (2 .* log_B .- reshape(chsafe(log_rho), M, S, 1, Y)), 0.0)
    return dropdims(sum(t; dims = (1, 4)); dims = (1, 4))
end

"r*(u|x) from region log-beliefs (S,A,J,K) → (S,A)."
function planning_channel(log_b)
    lxu = dropdims(lse(log_b; dims = (3, 4)); dims = (3, 4))
    return log_conditional(lxu, 2, fill(-log(size(log_b, 2)), size(lxu)))
end

"r*(x′|x,u) = Σ_θ b / Σ_{x′,θ} b → (S,A,J); pairs without mass fall back to the layout-averaged T."
function dynamics_channel(log_b, log_T)
    lxuj = dropdims(lse(log_b; dims = 4); dims = 4)
    fb = dropdims(lse(log_T; dims = 4); dims = 4)
    fb = fb .- lse(fb; dims = 3)
    return log_conditional(lxuj, 3, fb)
end

"Observation channel fixed points: r*(y|x,θ) ∝ B r²/ρ over y; ρ*(y|x) = Σ_θ q(θ|x) r*(y|x,θ)."
function observation_channels(log_B, log_r_y, log_rho, log_q)
    M, S, K, Y = size(log_B)
    t = log_B .+ 2 .* chsafe(log_r_y) .- reshape(chsafe(log_rho), M, S, 1, Y)
    t = ifelse.(isfinite.(log_B), t, -Inf)
    r = t .- lse(t; dims = 4)
    qθ = log_conditional(log_q, 2, fill(-log(size(log_q, 2)), size(log_q)))
    rho = dropdims(lse(reshape(qθ, 1, S, K, 1) .+ r; dims = 3); dims = 3)
    return r, rho
end

"r ← (1 − λ) r_old + λ r_new in probability space, computed in log space."
function damp(log_old, log_new, λ)
    a = λ < 1 ? log1p(-min(λ, 1 - 1e-16)) .+ log_old : fill(-Inf, size(log_old))
    b = λ > 0 ? log(max(λ, 1e-300)) .+ log_new : fill(-Inf, size(log_new))
    return log_add_exp.(a, b)
end

log_add_exp(a, b) = (m = max(a, b); isfinite(m) ? m + log(exp(a - m) + exp(b - m)) : m)
