# Entry points for Python (pyrxaif.engines.julia / pyrxaif.julia). Sequences arrive as (d, T)
# matrices, covariance sequences as (d, d, T); results go back as Dict{String, Any} of arrays in
# the same layouts (Python moves the time axis to the front).

columns(X) = [Vector{Float64}(c) for c in eachcol(X)]
slices(C) = [Matrix{Float64}(C[:, :, t]) for t in axes(C, 3)]
stack_means(qs) = reduce(hcat, [mean(q) for q in qs])
stack_covs(qs) = cat([Matrix(cov(q)) for q in qs]...; dims = 3)
wishart_inv_scale(q::WishartFast) = Matrix(q.invS)
wishart_inv_scale(q) = Matrix(inv(cholesky(Symmetric(Matrix(BayesBase.params(q)[2])))))
wishart_df(q) = Float64(BayesBase.params(q)[1])
scale_from_inv(S⁻¹) = Matrix(inv(cholesky(Symmetric(Matrix{Float64}(S⁻¹)))))

function py_smooth_lds(Y, Ycov, U, a, W, m1, V1)
    d, m = size(Y, 1), size(U, 1)
    model = lds_smoothing_model(ycov = slices(Ycov), u = columns(U), m1 = Vector{Float64}(m1), V1 = Matrix{Float64}(V1),
        a = Vector{Float64}(a), W = Matrix{Float64}(W), d = d, m = m)
    res = infer(model = model, data = (y = columns(Y),), free_energy = true)
    z = res.posteriors[:z]
    return Dict{String, Any}("means" => stack_means(z), "covs" => stack_covs(z), "free_energy" => collect(Float64, res.free_energy))
end

function py_learn_lds(Y, Ycov, U, m1, V1, a_mean, a_cov, w_df, w_invscale, iterations)
    d, m = size(Y, 1), size(U, 1)
    w_scale = scale_from_inv(w_invscale)
    model = lds_model(ycov = slices(Ycov), u = columns(U), m1 = Vector{Float64}(m1), V1 = Matrix{Float64}(V1),
        a_mean = Vector{Float64}(a_mean), a_cov = Matrix{Float64}(a_cov), w_df = Float64(w_df), w_scale = w_scale, d = d, m = m)
    init = @initialization begin
        q(a) = MvNormalMeanCovariance(Vector{Float64}(a_mean), Matrix{Float64}(a_cov))
        q(W) = Wishart(Float64(w_df), w_scale)
    end
    res = infer(model = model, data = (y = columns(Y),), constraints = lds_constraints(), initialization = init,
        iterations = Int(iterations), free_energy = true, returnvars = (z = KeepLast(), a = KeepLast(), W = KeepLast()))
    z, qa, qW = res.posteriors[:z], res.posteriors[:a], res.posteriors[:W]
    return Dict{String, Any}(
        "means" => stack_means(z), "covs" => stack_covs(z), "ab_mean" => Vector(mean(qa)), "ab_cov" => Matrix(cov(qa)),
        "w_df" => wishart_df(qW), "w_inv_scale" => wishart_inv_scale(qW), "free_energy" => collect(Float64, res.free_energy))
end

"""
    py_plan_lds(z1_mean, z1_cov, goal_mean, goal_cov, a, W, u_cov, horizon, iterations, goal_steps)

Controls u_1..u_horizon. The graph ends at the last goal (a state after it would have a single
neighbour, a half-edge RxInfer rejects): controls after the last goal keep their prior N(0, u_cov)
and the states after it are the mean roll-out of z' = A z (zero mean control).
"""
function py_plan_lds(z1_mean, z1_cov, goal_mean, goal_cov, a, W, u_cov, horizon, iterations, goal_steps)
    d, m = length(z1_mean), size(u_cov, 1)
    H = Int(horizon)
    steps = sort(Vector{Int}(goal_steps))
    (!isempty(steps) && allunique(steps) && 2 <= first(steps) && last(steps) <= H + 1) ||
        throw(ArgumentError("goal_steps: expected distinct integers in 2:$(H + 1), got $(goal_steps)"))
    Int(iterations) >= 1 || throw(ArgumentError("iterations: expected a positive integer, got $(iterations)"))
    reach = last(steps) - 1                                   # transitions up to the last goal
    model = lds_planning_model(z1_mean = Vector{Float64}(z1_mean), z1_cov = Matrix{Float64}(z1_cov),
        goal_cov = Matrix{Float64}(goal_cov), goal_steps = steps, a = Vector{Float64}(a), W = Matrix{Float64}(W),
        u_cov = Matrix{Float64}(u_cov), horizon = reach, d = d, m = m)
    res = infer(model = model, data = (g = [Vector{Float64}(goal_mean) for _ in steps],), iterations = Int(iterations),
        returnvars = (u = KeepLast(), z = KeepLast()))
    u, z = res.posteriors[:u], res.posteriors[:z]
    A = ab_matrix(Vector{Float64}(a), d, d + m)[:, 1:d]
    z_means = stack_means(z)
    for _ in (reach + 1):H
        z_means = hcat(z_means, A * z_means[:, end])
    end
    u_prior = Matrix{Float64}(u_cov)
    return Dict{String, Any}("u_means" => hcat(stack_means(u), zeros(m, H - reach)),
        "u_covs" => cat(stack_covs(u), fill(u_prior, H - reach)...; dims = 3), "z_means" => z_means)
end

"""
    py_plan_linear_gaussian(z_start, A, B, c, S, goal_mean, goal_covs, goal_steps, u_cov)

`plan_linear_gaussian` with Python's layout: A (d, d, n), B (d, m, n), S (d, d, n) and goal_covs
(d, d, K) one matrix per slice, c (d, n) one column per transition, goal_steps 1-based states in
2:(n + 1). Returns Dict of u_means (m, n), u_covs (m, m, n), z_means (d, n) for z_2..z_{n+1}.
"""
function py_plan_linear_gaussian(z_start, A, B, c, S, goal_mean, goal_covs, goal_steps, u_cov)
    u, z = plan_linear_gaussian(Vector{Float64}(z_start), slices(A), slices(B), columns(c), slices(S),
        Vector{Float64}(goal_mean), slices(goal_covs), Vector{Int}(goal_steps), Matrix{Float64}(u_cov))
    return Dict{String, Any}("u_means" => stack_means(u), "u_covs" => stack_covs(u), "z_means" => stack_means(z))
end

function py_tmaze_policy_free_energies(A_prior, c_logits, D, B, policies, meta, iterations, burnin)
    c = probs_from_logits(Vector{Float64}(c_logits))
    Bs = [Matrix{Float64}(B[:, :, k]) for k in axes(B, 3)]
    G = zeros(size(policies, 2))
    for p in axes(policies, 2)
        policy = Vector{Int}(policies[:, p])
        metas = [meta == "GFE" ? GFEMeta() : BetheMeta() for _ in policy]
        G[p], _ = tmaze_policy_evaluation(Matrix{Float64}(A_prior), [c for _ in policy], Vector{Float64}(D),
            [Bs[a] for a in policy], metas; iterations = Int(iterations), burnin = Int(burnin))
    end
    return G
end

"""
    py_tmaze_evaluate(A_prior, C, D, B, X, observed, meta, iterations, burnin, newton_iterations)

Policies given by their transition matrices: B (n, n, T, P) with B[:, :, t, p] the matrix of policy
p's t-th action; goal log-probabilities C (m, T); observations X (m, T) one-hot, used where
observed[t]. Returns Dict("G" => (P,) bits, "A" => (m, n, P) concentrations of the final q(A)).
"""
function py_tmaze_evaluate(A_prior, C, D, B, X, observed, meta, iterations, burnin, newton_iterations)
    T, P = size(B, 3), size(B, 4)
    c = [probs_from_logits(Vector{Float64}(C[:, t])) for t in 1:T]
    x = [Bool(observed[t]) ? Vector{Float64}(X[:, t]) : nothing for t in 1:T]
    metas = [meta == "GFE" ? GFEMeta(x[t]; newton_iterations = Int(newton_iterations)) : BetheMeta(x[t]) for t in 1:T]
    a0 = Matrix{Float64}(A_prior)
    G = zeros(P)
    Apost = zeros(size(a0)..., P)
    for p in 1:P
        Bs = [Matrix{Float64}(B[:, :, t, p]) for t in 1:T]
        G[p], Apost[:, :, p] = tmaze_policy_evaluation(a0, c, Vector{Float64}(D), Bs, metas;
            iterations = Int(iterations), burnin = Int(burnin))
    end
    return Dict{String, Any}("G" => G, "A" => Apost)
end

"""
    py_plan_rollout(succ, log_T, log_C, log_pi, log_b0, planning, dynamics, observation, damping,
                    n_iter, obs_weight, horizon, log_B_groups...)

Grid-world planning (`plan_rollout`). `succ` holds 0-based successor indices (Python's); the other
arrays keep the JAX engine's index order. Returns Dict of log_q_u0 (A,), free_energy and
channel_change (n_iter,), final_free_energy, log_single (S, K, H + 1).
"""
function py_plan_rollout(succ, log_T, log_C, log_pi, log_b0, planning, dynamics, observation, damping, n_iter,
                         obs_weight, horizon, log_B_groups...)
    spec = RolloutSpec(Array{Int}(succ) .+ 1, Array{Float64}(log_T), [Array{Float64}(g) for g in log_B_groups],
        Matrix{Float64}(log_C), Vector{Float64}(log_pi))
    method = RolloutMethod(Bool(planning), Bool(dynamics), Symbol(observation), Float64(damping), Int(n_iter),
        Float64(obs_weight))
    r = plan_rollout(spec, Matrix{Float64}(log_b0), method, Int(horizon))
    return Dict{String, Any}("log_q_u0" => r.log_q_u0, "free_energy" => r.free_energy,
        "channel_change" => r.channel_change, "final_free_energy" => r.final_free_energy,
        "log_single" => cat(r.log_single...; dims = 3))
end

# --- generic inference for pyrxaif.julia.infer --------------------------------------------------
"Numpy-friendly summary of a posterior (or a vector of posteriors, stacked along the last axis)."
function summarize(q)
    q isa AbstractVector && !(q isa AbstractVector{<:Real}) && return stack_summaries(map(summarize, q))
    q isa Categorical && return Dict{String, Any}("type" => "Categorical", "probs" => probvec(q))
    q isa Dirichlet && return Dict{String, Any}("type" => "Dirichlet", "alpha" => Vector(q.alpha))
    q isa DirichletCollection && return Dict{String, Any}("type" => "DirichletCollection", "alpha" => Array(q.α))
    if q isa Union{Wishart, WishartFast}
        return Dict{String, Any}("type" => "Wishart", "df" => wishart_df(q), "inv_scale" => wishart_inv_scale(q))
    end
    q isa PointMass && return Dict{String, Any}("type" => "PointMass", "value" => mean(q))
    μ = mean(q)
    μ isa Real && return Dict{String, Any}("type" => string(nameof(typeof(q))), "mean" => μ, "var" => var(q))
    return Dict{String, Any}("type" => string(nameof(typeof(q))), "mean" => Vector(μ), "cov" => Matrix(cov(q)))
end

function stack_summaries(ss)
    isempty(ss) && return Dict{String, Any}("type" => "empty")
    # "stacked" counts the stacking levels (a KeepEach sequence: iterations of time steps → 2);
    # each level is a trailing axis, the outermost last
    out = Dict{String, Any}("type" => first(ss)["type"], "stacked" => get(first(ss), "stacked", 0) + 1)
    for k in keys(first(ss))
        k in ("type", "stacked") && continue
        vals = [s[k] for s in ss]
        out[k] = vals[1] isa Real ? collect(Float64, vals) : cat(vals...; dims = ndims(vals[1]) + 1)
    end
    return out
end

"""
    py_infer(source, name, data_names, kw_names, constraints, initialization, meta, returnvars, iterations, free_energy, values...)

Evaluate `source` (if not empty) in a fresh module with `using RxInfer, PyRxAIF`, build the model
`name` with the keyword arguments `kw_names` (comma-separated) and run `infer` with the data
`data_names`; `values` holds the data values then the keyword values, in that order.
"""
function py_infer(source, name, data_names, kw_names, constraints, initialization, meta, returnvars, iterations, free_energy, values...)
    mod = Module(gensym(:pyrxaif_model))
    Core.eval(mod, :(using RxInfer, PyRxAIF))
    isempty(source) || include_string(mod, source, "pyrxaif.julia.infer")
    splitnames(s) = isempty(s) ? Symbol[] : Symbol.(split(s, ","))
    dn, kn = splitnames(data_names), splitnames(kw_names)
    length(values) == length(dn) + length(kn) || throw(ArgumentError("py_infer: $(length(values)) values for $(length(dn)) data and $(length(kn)) keyword names"))
    data = NamedTuple{Tuple(dn)}(values[1:length(dn)])
    kwargs = NamedTuple{Tuple(kn)}(values[(length(dn) + 1):end])
    modelfn = Core.eval(mod, Meta.parse(name))
    evalopt(s) = isempty(s) ? nothing : Core.eval(mod, Meta.parse(s))
    # The model's methods were defined above, after this call started: they are newer than the
    # running world, so every call that reaches them goes through invokelatest (world age).
    model = Base.invokelatest(modelfn; kwargs...)
    # KeepLast unless the caller asks otherwise (with `iterations`, RxInfer's default is KeepEach:
    # one posterior per iteration, src/inference/batch.jl)
    rv = something(evalopt(returnvars), KeepLast())
    args = (model = model, data = data, constraints = evalopt(constraints), initialization = evalopt(initialization),
        meta = evalopt(meta), returnvars = rv, iterations = iterations < 0 ? nothing : iterations,
        free_energy = free_energy)
    res = Base.invokelatest(infer; (k => v for (k, v) in pairs(args) if v !== nothing)...)
    posts = Dict{String, Any}(string(k) => summarize(v) for (k, v) in pairs(res.posteriors))
    fe = free_energy ? collect(Float64, res.free_energy) : nothing
    return Dict{String, Any}("posteriors" => posts, "free_energy" => fe)
end
