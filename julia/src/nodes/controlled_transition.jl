# ControlledTransition node: y ~ N(H [x; u], W⁻¹) with H = [A B] (d × n, n = d + m).
#
# Interfaces [y, x, u, a, W]: y = z_{t+1} (d), x = z_t (d), u = control (m), a = row-major vec H
# (d n), W = precision (d × d). Under q(y, x, u) q(a) q(W) the node's expected log factor is the
# Gaussian potential over v = [x; u; y] with precision [[K, −H̄ᵀW̄], [−W̄H̄, W̄]],
# K = E[Hᵀ W H] = H̄ᵀW̄H̄ + Ψ, Ψ_ab = Σ_ij W̄_ij Cov(H_ia, H_jb): every message to y, x, u is this
# potential times the other incoming messages, marginalised (Ψ enters both directions). A control
# given as data arrives as a point mass q_u and is conditioned on instead of integrated. This is
# ReactiveMP's ContinuousTransition (linear K(a)) extended by the control input, with the same
# textbook constants in the average energy.

struct ControlledTransition end

@node ControlledTransition Stochastic [y, x, u, a, W]

"Dimensions of the ControlledTransition node: d = dim z, m = dim u."
struct ControlledTransitionMeta
    d::Int
    m::Int
end

ab_matrix(a, d, n) = permutedims(reshape(a, n, d))

"K = E[HᵀWH] = H̄ᵀW̄H̄ + Σ_ij W̄_ij Cov(row_i, row_j)   (n × n)."
function expected_quadratic(ma, Va, W̄, d, n)
    H = ab_matrix(ma, d, n)
    Ψ = zeros(eltype(ma), n, n)
    for i in 1:d, j in 1:d
        Ψ .+= W̄[i, j] .* Va[((i - 1) * n + 1):(i * n), ((j - 1) * n + 1):(j * n)]
    end
    return symmetrize(H' * W̄ * H + Ψ)
end

"E[H S Hᵀ] = H̄SH̄ᵀ + [Σ_ab S_ab Cov(H_ia, H_jb)]_ij   (d × d)."
function expected_outer(ma, Va, S, d, n)
    H = ab_matrix(ma, d, n)
    C = zeros(eltype(ma), d, d)
    for i in 1:d, j in 1:d
        C[i, j] = sum(S .* Va[((i - 1) * n + 1):(i * n), ((j - 1) * n + 1):(j * n)])
    end
    return symmetrize(H * S * H' + C)
end

"Potential over [x; u; y]: ξ = 0, Λ = [[K, −H̄ᵀW̄], [−W̄H̄, W̄]]."
function factor_potential(ma, Va, W̄, d, n)
    H = ab_matrix(ma, d, n)
    K = expected_quadratic(ma, Va, W̄, d, n)
    Λ = [K (-H' * W̄); (-W̄ * H) W̄]
    return zeros(eltype(ma), n + d), Matrix(symmetrize(Λ))
end

# index blocks of v = [x; u; y]
ct_blocks(meta::ControlledTransitionMeta) = (1:meta.d, (meta.d + 1):(meta.d + meta.m), (meta.d + meta.m + 1):(2 * meta.d + meta.m))

"The expected factor as a potential over [x; u; y] under q(a), q(W)."
function node_potential(meta, q_a, q_W)
    d, n = meta.d, meta.d + meta.m
    ma, Va = moments_or_point(q_a)
    return factor_potential(ma, Va, mean(q_W), d, n)
end

"Message to block `target` from the potential and incoming messages / known values on the others."
function ct_message(meta, q_a, q_W, target::Symbol; x = nothing, u = nothing, y = nothing, u_value = nothing)
    ξ, Λ = node_potential(meta, q_a, q_W)
    bx, bu, by = ct_blocks(meta)
    for (b, m) in ((bx, x), (bu, u), (by, y))
        m === nothing || absorb!(ξ, Λ, b, natural_params(m)...)
    end
    keep = target === :x ? collect(bx) : target === :u ? collect(bu) : collect(by)
    if u_value !== nothing
        ξ, Λ = gaussian_condition(ξ, Λ, collect(bu), u_value)
        # indices shift after removing the u block
        keep = target === :x ? collect(bx) : collect((meta.d + 1):(2 * meta.d))
    end
    ξo, Λo = gaussian_marginalise(ξ, Λ, keep)
    return MvNormalWeightedMeanPrecision(ξo, Λo)
end

# --- messages to y, x, u: control as data (point mass) -----------------------------------------
@rule ControlledTransition(:y, Marginalisation) (m_x::MultivariateNormalDistributionsFamily, q_u::PointMass, q_a::Any, q_W::Any, meta::ControlledTransitionMeta) =
    ct_message(meta, q_a, q_W, :y; x = m_x, u_value = mean(q_u))

@rule ControlledTransition(:x, Marginalisation) (m_y::MultivariateNormalDistributionsFamily, q_u::PointMass, q_a::Any, q_W::Any, meta::ControlledTransitionMeta) =
    ct_message(meta, q_a, q_W, :x; y = m_y, u_value = mean(q_u))

# --- messages to y, x, u: latent control in the same cluster (planning) --------------------------
@rule ControlledTransition(:y, Marginalisation) (m_x::MultivariateNormalDistributionsFamily, m_u::MultivariateNormalDistributionsFamily, q_a::Any, q_W::Any, meta::ControlledTransitionMeta) =
    ct_message(meta, q_a, q_W, :y; x = m_x, u = m_u)

@rule ControlledTransition(:x, Marginalisation) (m_y::MultivariateNormalDistributionsFamily, m_u::MultivariateNormalDistributionsFamily, q_a::Any, q_W::Any, meta::ControlledTransitionMeta) =
    ct_message(meta, q_a, q_W, :x; y = m_y, u = m_u)

@rule ControlledTransition(:u, Marginalisation) (m_y::MultivariateNormalDistributionsFamily, m_x::MultivariateNormalDistributionsFamily, q_a::Any, q_W::Any, meta::ControlledTransitionMeta) =
    ct_message(meta, q_a, q_W, :u; x = m_x, y = m_y)

# --- joint marginals ----------------------------------------------------------------------------
"Joint belief over [y; x] (u known) or [y; x; u] from the potential times the incoming messages."
function ct_joint(meta, q_a, q_W; x, y, u = nothing, u_value = nothing)
    ξ, Λ = node_potential(meta, q_a, q_W)
    bx, bu, by = ct_blocks(meta)
    absorb!(ξ, Λ, bx, natural_params(x)...)
    absorb!(ξ, Λ, by, natural_params(y)...)
    u === nothing || absorb!(ξ, Λ, bu, natural_params(u)...)
    if u_value !== nothing
        ξ, Λ = gaussian_condition(ξ, Λ, collect(bu), u_value)
        order = vcat(collect((meta.d + 1):(2 * meta.d)), collect(1:meta.d))          # [y; x]
    else
        order = vcat(collect(by), collect(bx), collect(bu))                           # [y; x; u]
    end
    return MvNormalWeightedMeanPrecision(ξ[order], Matrix(symmetrize(Λ[order, order])))
end

@marginalrule ControlledTransition(:y_x) (m_y::MultivariateNormalDistributionsFamily, m_x::MultivariateNormalDistributionsFamily, q_u::PointMass, q_a::Any, q_W::Any, meta::ControlledTransitionMeta) =
    ct_joint(meta, q_a, q_W; x = m_x, y = m_y, u_value = mean(q_u))

@marginalrule ControlledTransition(:y_x_u) (m_y::MultivariateNormalDistributionsFamily, m_x::MultivariateNormalDistributionsFamily, m_u::MultivariateNormalDistributionsFamily, q_a::Any, q_W::Any, meta::ControlledTransitionMeta) =
    ct_joint(meta, q_a, q_W; x = m_x, y = m_y, u = m_u)

# --- sufficient statistics, messages to a and W, average energy ----------------------------------
"Second moments (xx = E[x̃x̃ᵀ], zx = E[y x̃ᵀ], zz = E[yyᵀ]) with x̃ = [x; u], from q over [y; x] and a known u, or q over [y; x; u]."
function transition_stats(meta, q_joint, u_value = nothing)
    d, m = meta.d, meta.m
    μ, Σ = mean_cov(q_joint)
    if u_value !== nothing
        μ = vcat(μ, u_value)
        Σ = [Σ zeros(2d, m); zeros(m, 2d) zeros(m, m)]
    end
    S = Σ + μ * μ'
    y, xt = 1:d, (d + 1):(2d + m)
    return (xx = S[xt, xt], zx = S[y, xt], zz = S[y, y], count = 1.0)
end

"To vec H (row-major): Λ = W̄ ⊗ Σ E[x̃x̃ᵀ], ξ = vec_rowmajor(W̄ Σ E[y x̃ᵀ])."
message_to_ab(stats, W̄) = MvNormalWeightedMeanPrecision(vec(permutedims(W̄ * stats.zx)), Matrix(symmetrize(kron(W̄, stats.xx))))

"R = Σ E[(y − Hx̃)(y − Hx̃)ᵀ] = zz − H̄zxᵀ − zxH̄ᵀ + E[H xx Hᵀ]."
function expected_residual_outer(stats, ma, Va, d, n)
    H = ab_matrix(ma, d, n)
    cross = stats.zx * H'
    return symmetrize(stats.zz - cross - cross' + expected_outer(ma, Va, stats.xx, d, n))
end

"To W: |W|^{count/2} exp(−½ tr(W R)) = Wishart(ν = count + d + 1, inverse scale R)."
function message_to_w(stats, ma, Va, d, n)
    return WishartFast(stats.count + d + 1, expected_residual_outer(stats, ma, Va, d, n))
end

"U = count (d/2 log 2π − ½E log|W|) + ½ tr(W̄ R)."
function transition_average_energy(stats, ma, Va, W̄, Elogdet, d, n)
    R = expected_residual_outer(stats, ma, Va, d, n)
    return stats.count * (d / 2 * log(2π) - Elogdet / 2) + tr(W̄ * R) / 2
end

@rule ControlledTransition(:a, Marginalisation) (q_y_x::Any, q_u::PointMass, q_W::Any, meta::ControlledTransitionMeta) =
    message_to_ab(transition_stats(meta, q_y_x, mean(q_u)), mean(q_W))

@rule ControlledTransition(:a, Marginalisation) (q_y_x_u::Any, q_W::Any, meta::ControlledTransitionMeta) =
    message_to_ab(transition_stats(meta, q_y_x_u), mean(q_W))

@rule ControlledTransition(:W, Marginalisation) (q_y_x::Any, q_u::PointMass, q_a::Any, meta::ControlledTransitionMeta) =
    message_to_w(transition_stats(meta, q_y_x, mean(q_u)), moments_or_point(q_a)..., meta.d, meta.d + meta.m)

@rule ControlledTransition(:W, Marginalisation) (q_y_x_u::Any, q_a::Any, meta::ControlledTransitionMeta) =
    message_to_w(transition_stats(meta, q_y_x_u), moments_or_point(q_a)..., meta.d, meta.d + meta.m)

@average_energy ControlledTransition (q_y_x::Any, q_u::PointMass, q_a::Any, q_W::Any, meta::ControlledTransitionMeta) =
    transition_average_energy(transition_stats(meta, q_y_x, mean(q_u)), moments_or_point(q_a)..., mean(q_W), expected_logdet(q_W), meta.d, meta.d + meta.m)

@average_energy ControlledTransition (q_y_x_u::Any, q_a::Any, q_W::Any, meta::ControlledTransitionMeta) =
    transition_average_energy(transition_stats(meta, q_y_x_u), moments_or_point(q_a)..., mean(q_W), expected_logdet(q_W), meta.d, meta.d + meta.m)
