# EFE planning by message passing on the rollout graph (grid-worlds): BP, VBP, RM-MP, AIF-MP and
# Nuijten-MP as one scheme, the Julia counterpart of pyrxaif.inference.rollout (same index order,
# same equations, checked on the golden vectors tests/golden/rollout.json).
#
# Latent s_t = (x_t, θ), t = 0..H (θ, the layout, is carried along the chain, so the base graph is a
# tree and sum-product on it is exact). Transition t → t+1 has the kernel
#   K_t(x, u, j, θ) = T(succ[x,u,j] | x, θ, u) π(u) [r_t(u|x)] [/ r_t(x′_j|x,u)]
# and x_{t+1} the unary factor φ_{t+1}(x, θ) = log C(x, θ) + γ·(AIF-MP observation message
# Σ_y B r²/ρ, or Nuijten-MP's epistemic prior). One iteration: forward-backward with the current
# kernels, region beliefs b_t ∝ α_t K_t φ_{t+1} β_{t+1}, every active channel ← its damped
# conditional. Methods with the planning correction clamp the start state, q(x_0) = b_0(x_0), while
# θ stays a latent of the plan with the factor b_0(θ|x_0) (clamping θ too makes the policy hedge).
#
# Arrays: succ (S,A,J) 1-based successor indices; log_T (S,A,J,K) (−Inf padding); log_B: vector of
# modality groups (M,S,K,Y); log_C (S,K); log_pi (A,); log_b0 (S,K). Time-indexed quantities are
# vectors over t (kernels t = 1..H for the transitions x_{t−1} → x_t).

"The exact model tensors of a grid-world, in log space (see pyrxaif.inference.rollout.RolloutModel)."
struct RolloutSpec
    succ::Array{Int, 3}
    log_T::Array{Float64, 4}
    log_B::Vector{Array{Float64, 4}}
    log_C::Matrix{Float64}
    log_pi::Vector{Float64}
end

"Which channels a method uses; `observation` is :none, :channel (AIF-MP) or :prior (Nuijten-MP)."
struct RolloutMethod
    planning::Bool
    dynamics::Bool
    observation::Symbol
    damping::Float64
    n_iter::Int
    obs_weight::Float64
end

const ROLLOUT_FLAGS = Dict("bp" => (false, false, :none), "vbp" => (true, false, :none),
    "rm-mp" => (true, true, :none), "aif-mp" => (true, true, :channel), "nuijten-mp" => (true, true, :prior))
const ROLLOUT_DAMPING = Dict("bp" => 1.0, "vbp" => 0.5, "rm-mp" => 0.5, "aif-mp" => 0.5, "nuijten-mp" => 1.0)

"A named method with the JAX engine's defaults (Nuijten-MP is always undamped)."
function rollout_method(name::AbstractString; damping = nothing, n_iter::Integer = 16, obs_weight::Real = 1.0)
    haskey(ROLLOUT_FLAGS, name) ||
        throw(ArgumentError("method: unknown method $(repr(name)); valid: $(join(sort(collect(keys(ROLLOUT_FLAGS))), ", "))"))
    λ = name == "nuijten-mp" ? 1.0 : (damping === nothing ? ROLLOUT_DAMPING[name] : Float64(damping))
    0 < λ <= 1 || throw(ArgumentError("damping: expected a number in (0, 1], got $λ"))
    n_iter >= 1 || throw(ArgumentError("n_iter: expected a positive integer, got $n_iter"))
    obs_weight > 0 || throw(ArgumentError("obs_weight: expected a positive number, got $obs_weight"))
    planning, dynamics, observation = ROLLOUT_FLAGS[name]
    return RolloutMethod(planning, dynamics, observation, λ, Int(n_iter), Float64(obs_weight))
end

"log Σ exp over all entries (−Inf when every entry is −Inf)."
function lse_all(v)
    m = maximum(v)
    return isfinite(m) ? m + log(sum(exp.(v .- m))) : m
end

"Segment log-sum-exp: out[x′, θ] = log Σ_{(x,u,j): succ[x,u,j] = x′} exp(vals[x,u,j,θ])."
function scatter_lse(vals, succ, S)
    K = size(vals, 4)
    mx = fill(-Inf, S, K)
    for I in CartesianIndices(succ), k in 1:K
        s = succ[I]
        mx[s, k] = max(mx[s, k], vals[I, k])
    end
    acc = zeros(S, K)
    for I in CartesianIndices(succ), k in 1:K
        s = succ[I]
        if isfinite(mx[s, k])
            acc[s, k] += exp(vals[I, k] - mx[s, k])
        end
    end
    return ifelse.(isfinite.(mx), log.(acc) .+ mx, -Inf)
end

"g[x,u,j,θ] = h[succ[x,u,j], θ]."
function gather_successors(h, succ)
    K = size(h, 2)
    g = Array{Float64}(undef, size(succ)..., K)
    for I in CartesianIndices(succ), k in 1:K
        g[I, k] = h[succ[I], k]
    end
    return g
end

"""
Sum-product on the chain with kernels `log_K[t]` (S,A,J,K) and unary factors `log_phi[t]` (S,K) on
x_1..x_H. Returns (region beliefs b_t (S,A,J,K), singleton beliefs of (x_t, θ) for t = 0..H, log Z);
−log Z is the free energy. With `clamp_initial` the start state is clamped, q(x_0) = b_0(x_0), θ keeps the
factor b_0(θ|x_0), and log Z = Σ_x b_0(x) log β̄_0(x) with β̄_0(x) = Σ_θ b_0(θ|x) β_0(x, θ).
"""
function rollout_forward_backward(succ, log_b0, log_K, log_phi; clamp_initial::Bool = false)
    H = length(log_K)
    S, K = size(log_b0)
    beta_next = Vector{Matrix{Float64}}(undef, H)     # β_t for the successor of transition t
    g_all = Vector{Array{Float64, 4}}(undef, H)
    cb = zeros(H)
    lb = zeros(S, K)
    for t in H:-1:1
        beta_next[t] = lb
        g = gather_successors(log_phi[t] .+ lb, succ)
        new = dropdims(lse(log_K[t] .+ g; dims = (2, 3)); dims = (2, 3))
        c = lse_all(new)
        c = isfinite(c) ? c : 0.0
        g_all[t], cb[t] = g, c
        lb = new .- c
    end
    beta0 = lb
    if clamp_initial
        # q(x_0) = b_0(x_0) is kept; θ stays a latent of the plan with the factor b_0(θ|x_0):
        # α_0(x, θ) = b_0(x, θ) / β̄_0(x),  β̄_0(x) = Σ_θ b_0(θ|x) β_0(x, θ)
        lbx = lse(log_b0; dims = 2)                                          # (S,1) log b_0(x)
        okx = isfinite.(lbx)
        cond = ifelse.(okx, log_b0 .- ifelse.(okx, lbx, 0.0), -Inf)          # log b_0(θ|x)
        lbar = lse(cond .+ beta0; dims = 2)                                  # (S,1) log β̄_0(x)
        ok = okx .& isfinite.(lbar)
        la = ifelse.(ok, log_b0 .- ifelse.(ok, lbar, 0.0), -Inf)
        la = la .- lse_all(la)
    else
        la = copy(log_b0)
    end
    alphas = Vector{Matrix{Float64}}(undef, H + 1)
    cs = zeros(H)
    for t in 1:H
        alphas[t] = la
        nxt = scatter_lse(reshape(la, S, 1, 1, K) .+ log_K[t], succ, S) .+ log_phi[t]
        cs[t] = lse_all(nxt)
        la = nxt .- cs[t]
    end
    alphas[H + 1] = la
    if clamp_initial
        px = exp.(vec(lbx))
        log_Z = sum(ifelse.(px .> 0, px .* ifelse.(vec(ok), vec(lbar), 0.0), 0.0)) + sum(cb)
    else
        log_Z = sum(cs) + lse_all(la)
    end
    region = map(1:H) do t
        r = reshape(alphas[t], S, 1, 1, K) .+ log_K[t] .+ g_all[t]
        r .- lse_all(r)
    end
    betas = vcat([beta0], beta_next)
    single = map(1:(H + 1)) do t
        s = alphas[t] .+ betas[t]
        s .- lse_all(s)
    end
    return region, single, log_Z
end

"Channels of the rollout (vectors over the H transitions; observation channels per modality group)."
struct RolloutChannels
    log_r_u::Vector{Matrix{Float64}}                 # (S,A)
    log_r_x::Vector{Array{Float64, 3}}               # (S,A,J)
    log_r_y::Vector{Vector{Array{Float64, 4}}}       # group → t → (M,S,K,Y)
    log_rho::Vector{Vector{Array{Float64, 3}}}       # group → t → (M,S,Y)
end

"Start: uniform r(u|x), the layout-averaged T as r(x′|x,u), uniform r(y|x,θ), ρ(y|x) over possible y."
function rollout_initial_channels(spec::RolloutSpec, H::Int)
    S, A, J, K = size(spec.log_T)
    fb = dropdims(lse(spec.log_T; dims = 4); dims = 4)
    fb = fb .- lse(fb; dims = 3)
    r_y = Vector{Vector{Array{Float64, 4}}}()
    rho = Vector{Vector{Array{Float64, 3}}}()
    for lB in spec.log_B
        M, _, _, Y = size(lB)
        valid = isfinite.(dropdims(lse(lB; dims = 3); dims = 3))          # (M,S,Y)
        n_y = sum(valid; dims = 3)
        lr = ifelse.(valid, -log.(max.(n_y, 1)), -Inf)
        push!(rho, [copy(lr) for _ in 1:H])
        push!(r_y, [repeat(reshape(lr, M, S, 1, Y), 1, 1, K, 1) for _ in 1:H])
    end
    return RolloutChannels([fill(-log(A), S, A) for _ in 1:H], [copy(fb) for _ in 1:H], r_y, rho)
end

"Kernels log K_t and unary factors log φ_t of the channel-augmented graph."
function rollout_kernels(spec::RolloutSpec, method::RolloutMethod, ch::RolloutChannels)
    H = length(ch.log_r_u)
    log_K = [dynamics_log_kernel(spec.log_T, spec.log_pi;
                 log_r_u = method.planning ? ch.log_r_u[t] : nothing,
                 log_r_x = method.dynamics ? ch.log_r_x[t] : nothing) for t in 1:H]
    log_phi = [copy(spec.log_C) for _ in 1:H]
    for (g, lB) in enumerate(spec.log_B), t in 1:H
        if method.observation === :channel
            log_phi[t] = log_phi[t] .+ method.obs_weight .* observation_log_message(lB, ch.log_r_y[g][t], ch.log_rho[g][t])
        elseif method.observation === :prior
            log_phi[t] = log_phi[t] .+ method.obs_weight .* epistemic_log_prior(lB, ch.log_rho[g][t])
        end
    end
    return log_K, log_phi
end

max_change(a, b) = maximum(abs.(exp.(a) .- exp.(b)))

"""
    plan_rollout(spec, log_b0, method, horizon) -> NamedTuple

Plans from the current log-belief `log_b0` (S,K) over (x, θ). Returns `log_q_u0` (A,), the free
energy F(r) = −log Z(r) before each channel update and the largest channel change per iteration
(`free_energy`, `channel_change`, length n_iter), `final_free_energy` and the singleton beliefs.
"""
function plan_rollout(spec::RolloutSpec, log_b0::AbstractMatrix, method::RolloutMethod, horizon::Integer)
    H = Int(horizon)
    H >= 1 || throw(ArgumentError("horizon: expected a positive integer, got $horizon"))
    size(log_b0) == (size(spec.log_T, 1), size(spec.log_T, 4)) ||
        throw(DimensionMismatch("log_b0: expected size $((size(spec.log_T, 1), size(spec.log_T, 4))), got $(size(log_b0))"))
    λ = method.damping
    sweep(ch) = rollout_forward_backward(spec.succ, log_b0, rollout_kernels(spec, method, ch)...;
        clamp_initial = method.planning)
    ch = rollout_initial_channels(spec, H)
    fe = zeros(method.n_iter)
    change = zeros(method.n_iter)
    for it in 1:(method.n_iter)
        region, single, log_Z = sweep(ch)
        r_u, r_x, r_y, rho = ch.log_r_u, ch.log_r_x, ch.log_r_y, ch.log_rho
        δ = 0.0
        if method.planning
            r_u = [damp(ch.log_r_u[t], planning_channel(region[t]), λ) for t in 1:H]
            δ = max(δ, maximum(max_change(r_u[t], ch.log_r_u[t]) for t in 1:H))
        end
        if method.dynamics
            r_x = [damp(ch.log_r_x[t], dynamics_channel(region[t], spec.log_T), λ) for t in 1:H]
            δ = max(δ, maximum(max_change(r_x[t], ch.log_r_x[t]) for t in 1:H))
        end
        if method.observation !== :none
            r_y = similar(ch.log_r_y)
            rho = similar(ch.log_rho)
            for (g, lB) in enumerate(spec.log_B)
                new_ry = Vector{Array{Float64, 4}}(undef, H)
                new_rho = Vector{Array{Float64, 3}}(undef, H)
                for t in 1:H
                    old_ry, old_rho = ch.log_r_y[g][t], ch.log_rho[g][t]
                    if method.observation === :channel
                        ry_star, rho_star = observation_channels(lB, old_ry, old_rho, single[t + 1])
                    else   # Nuijten-MP: the epistemic prior's ρ with the model B in place of a channel
                        ry_star = old_ry
                        rho_star = observation_channels(lB, zero(lB), zeros(size(lB, 1), size(lB, 2), size(lB, 4)), single[t + 1])[2]
                    end
                    new_ry[t] = damp(old_ry, ry_star, λ)
                    new_rho[t] = damp(old_rho, rho_star, λ)
                    δ = max(δ, max_change(new_rho[t], old_rho), max_change(new_ry[t], old_ry))
                end
                r_y[g], rho[g] = new_ry, new_rho
            end
        end
        fe[it], change[it] = -log_Z, δ
        ch = RolloutChannels(r_u, r_x, r_y, rho)
    end
    region, single, log_Z = sweep(ch)
    lq = dropdims(lse(region[1]; dims = (1, 3, 4)); dims = (1, 3, 4))
    return (log_q_u0 = lq .- lse_all(lq), free_energy = fe, channel_change = change,
            final_free_energy = -log_Z, log_single = single)
end
