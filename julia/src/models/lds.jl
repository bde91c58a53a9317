# Linear dynamical system with control, observed through encoder messages N(z_t; y_t, Σ_t):
#   z_1 ~ N(m1, V1),  z_{t+1} ~ ControlledTransition(z_t, u_t, a, W),  y_t ~ N(z_t, Σ_t).
# Learning: a = row-major vec [A B] ~ N(a_mean, a_cov), W ~ Wishart(w_df, scale = w_invscale⁻¹),
# q(z, a, W) = q(z) q(a) q(W) (the z chain stays structured: forward-backward inside VMP).
# Smoothing: a and W are known values (point masses): one pass of belief propagation, exact.

@model function lds_model(y, ycov, u, m1, V1, a_mean, a_cov, w_df, w_scale, d, m)
    a ~ MvNormalMeanCovariance(a_mean, a_cov)
    W ~ Wishart(w_df, w_scale)
    z[1] ~ MvNormalMeanCovariance(m1, V1)
    y[1] ~ MvNormalMeanCovariance(z[1], ycov[1])
    for t in eachindex(u)
        z[t + 1] ~ ControlledTransition(z[t], u[t], a, W) where {meta = ControlledTransitionMeta(d, m)}
        y[t + 1] ~ MvNormalMeanCovariance(z[t + 1], ycov[t + 1])
    end
end

@constraints function lds_constraints()
    q(z, a, W) = q(z) * q(a) * q(W)
end

@model function lds_smoothing_model(y, ycov, u, m1, V1, a, W, d, m)
    z[1] ~ MvNormalMeanCovariance(m1, V1)
    y[1] ~ MvNormalMeanCovariance(z[1], ycov[1])
    for t in eachindex(u)
        z[t + 1] ~ ControlledTransition(z[t], u[t], a, W) where {meta = ControlledTransitionMeta(d, m)}
        y[t + 1] ~ MvNormalMeanCovariance(z[t + 1], ycov[t + 1])
    end
end

# Planning as inference: z_1 from its belief N(z1_mean, z1_cov), controls u_t ~ N(0, u_cov) latent,
# the goal enters as observations g_k = goal_mean of z at the steps goal_steps (sorted, 1-based,
# e.g. [horizon + 1] for "reach at the end", 2:(horizon + 1) for "reach and stay") with covariance
# goal_cov; [A B] and W are fixed values (the posterior means of learning). The chain ends at the
# last goal, horizon = goal_steps[end] − 1: a state after it would have a single neighbour (a
# half-edge, which RxInfer rejects); py_plan_lds adds the controls after it with their prior.
# Tree-shaped: belief propagation is exact.
@model function lds_planning_model(g, z1_mean, z1_cov, goal_cov, goal_steps, a, W, u_cov, horizon, d, m)
    z[1] ~ MvNormalMeanCovariance(z1_mean, z1_cov)
    for t in 1:horizon
        u[t] ~ MvNormalMeanCovariance(zeros(m), u_cov)
        z[t + 1] ~ ControlledTransition(z[t], u[t], a, W) where {meta = ControlledTransitionMeta(d, m)}
    end
    for k in 1:(length(goal_steps) - 1)
        g[k] ~ MvNormalMeanCovariance(z[goal_steps[k]], goal_cov)
    end
    g[length(goal_steps)] ~ MvNormalMeanCovariance(z[horizon + 1], goal_cov)
end

# Planning on a time-varying linear Gaussian chain (one linearisation of a nonlinear transition
# model about a nominal trajectory, as pyrxaif.inference.planning.plan_linearised):
#   z_{k+1} = A_k z_k + B_k u_k + c_k + e_k,  e_k ~ N(0, S_k),  u_k ~ N(0, u_cov),  k = 1..n,
# from a known start z_1 (folded into the first offset o_1 = A_1 z_1 + c_1; o_k = c_k otherwise).
# Here x[k] is z_{k+1}. Goal observations g_j ~ N(z_{s_j}, goal_covs[j]) at the states s_j in
# goal_steps (sorted, 1-based, in 2:n+1, the last one s_end = n + 1: the chain ends at the last
# goal, see plan_linear_gaussian). A, B, o, S are constants: the graph is a tree of Gaussian nodes
# and belief propagation is exact.
@model function linear_gaussian_planning_model(g, A, B, o, S, u_cov, goal_covs, goal_steps, m)
    n = length(o)
    for k in 1:n
        u[k] ~ MvNormalMeanCovariance(zeros(m), u_cov)
    end
    x[1] ~ MvNormalMeanCovariance(B[1] * u[1] + o[1], S[1])
    for k in 2:n
        x[k] ~ MvNormalMeanCovariance(A[k] * x[k - 1] + B[k] * u[k] + o[k], S[k])
    end
    for j in 1:(length(goal_steps) - 1)
        g[j] ~ MvNormalMeanCovariance(x[goal_steps[j] - 1], goal_covs[j])
    end
    g[length(goal_steps)] ~ MvNormalMeanCovariance(x[n], goal_covs[length(goal_steps)])
end

"""
    plan_linear_gaussian(z_start, A, B, c, S, goal_mean, goal_covs, goal_steps, u_cov)

q(u_k) and q(z_{k+1}), k = 1..n, on the chain of `linear_gaussian_planning_model` (vectors of
matrices A, B, S and vectors c, one per transition). Returns (u posteriors, z_{2..n+1} posteriors).
The graph ends at the last goal; after it the controls keep their prior and the states are the
exact predictive marginals z' ~ N(A z + c, A Σ Aᵀ + B u_cov Bᵀ + S) (no evidence after the goal).
"""
function plan_linear_gaussian(z_start, A, B, c, S, goal_mean, goal_covs, goal_steps, u_cov)
    n = length(c)
    (length(A) == n && length(B) == n && length(S) == n) ||
        throw(DimensionMismatch("A, B, c and S must have one entry per transition ($n)"))
    (!isempty(goal_steps) && all(s -> 2 <= s <= n + 1, goal_steps) && allunique(goal_steps)) ||
        throw(ArgumentError("goal_steps must be distinct and lie in 2:$(n + 1)"))
    length(goal_covs) == length(goal_steps) || throw(DimensionMismatch("one goal covariance per goal step"))
    order = sortperm(goal_steps)
    steps, covs = goal_steps[order], goal_covs[order]
    reach = last(steps) - 1                                 # transitions up to the last goal
    o = [k == 1 ? A[1] * z_start + c[1] : c[k] for k in 1:reach]
    model = linear_gaussian_planning_model(A = A[1:reach], B = B[1:reach], o = o, S = S[1:reach], u_cov = u_cov,
        goal_covs = covs, goal_steps = steps, m = size(u_cov, 1))
    res = infer(model = model, data = (g = [goal_mean for _ in steps],), returnvars = (u = KeepLast(), x = KeepLast()))
    qu = Any[q for q in res.posteriors[:u]]
    qx = Any[q for q in res.posteriors[:x]]
    for k in (reach + 1):n
        μ, Σ = mean_cov(qx[end])
        push!(qu, MvNormalMeanCovariance(zeros(size(u_cov, 1)), Matrix{Float64}(u_cov)))
        push!(qx, MvNormalMeanCovariance(A[k] * μ + c[k], Matrix(Symmetric(A[k] * Σ * A[k]' + B[k] * u_cov * B[k]' + S[k]))))
    end
    return qu, qx
end
