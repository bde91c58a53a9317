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
# the goal enters as observations g_k = goal_mean of z at the steps goal_steps (e.g. [horizon + 1]
# for "reach at the end", 2:(horizon + 1) for "reach and stay") with covariance goal_cov; [A B] and W
# are fixed values (the posterior means of learning). Tree-shaped: belief propagation is exact.
@model function lds_planning_model(g, z1_mean, z1_cov, goal_cov, goal_steps, a, W, u_cov, horizon, d, m)
    z[1] ~ MvNormalMeanCovariance(z1_mean, z1_cov)
    for t in 1:horizon
        u[t] ~ MvNormalMeanCovariance(zeros(m), u_cov)
        z[t + 1] ~ ControlledTransition(z[t], u[t], a, W) where {meta = ControlledTransitionMeta(d, m)}
    end
    for k in eachindex(goal_steps)
        g[k] ~ MvNormalMeanCovariance(z[goal_steps[k]], goal_cov)
    end
end
