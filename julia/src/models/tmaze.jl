# T-maze (LAIF): one policy's rollout scored by its free energy.
#   A ~ DirichletCollection(A_prior)  (16 × 8 observation matrix, column-wise Dirichlet)
#   z_1 ~ Categorical(D),  z_{t+1} ~ DiscreteTransition(z_t, B[t])  (B[t]: the matrix of the policy's
#   t-th action), c_t ~ GoalObservation(z_{t+1}, A) with the goal prior c_t as data and meta
#   go_metas[t] = GFEMeta(x)/BetheMeta(x), x a one-hot observation (past step) or `nothing`
#   (future step). q(z, A) = q(z) q(A); the message on z into each goal node starts uniform and
#   the message to A reads q(A) (GoalObservationDependencies).

@model function tmaze_model(c, A_prior, D, B, go_metas, n)
    A ~ DirichletCollection(A_prior)
    z[1] ~ Categorical(D)
    for t in eachindex(B)
        z[t + 1] ~ DiscreteTransition(z[t], B[t])
        c[t] ~ GoalObservation(z[t + 1], A) where {
            meta = go_metas[t], dependencies = GoalObservationDependencies(z = Categorical(fill(1 / n, n)))
        }
    end
end

@constraints function tmaze_constraints()
    q(z, A) = q(z) * q(A)
end

"""
    tmaze_policy_evaluation(A_prior, c, D, Bs, metas; iterations, burnin) -> (G, α)

Run `tmaze_model` for one policy (`Bs`: one transition matrix per step, `c`: one goal probability
vector per step, `metas`: one GoalObservation meta per step) and return the free energy averaged over
the iterations after `burnin`, in bits, and the concentration matrix of the final q(A).
"""
function tmaze_policy_evaluation(A_prior, c, D, Bs, metas; iterations::Int = 50, burnin::Int = 10)
    0 <= burnin < iterations || throw(ArgumentError("burnin: expected 0 <= burnin < iterations = $iterations, got $burnin"))
    model = tmaze_model(A_prior = A_prior, D = D, B = Bs, go_metas = metas, n = length(D))
    init = @initialization begin
        q(A) = DirichletCollection(A_prior)
    end
    res = infer(model = model, data = (c = c,), constraints = tmaze_constraints(), initialization = init,
        iterations = iterations, free_energy = true, returnvars = (A = KeepLast(),))
    fe = res.free_energy
    G = sum(fe[(burnin + 1):end]) / (length(fe) - burnin) / log(2)
    return G, Matrix{Float64}(res.posteriors[:A].α)
end
