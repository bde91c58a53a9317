# T-maze (LAIF): one policy's rollout scored by its free energy.
#   A ~ DirichletCollection(A_prior)  (16 × 8 observation matrix, column-wise Dirichlet)
#   z_1 ~ Categorical(D),  z_{t+1} ~ DiscreteTransition(z_t, B[policy[t]]),
#   c_t ~ GoalObservation(z_{t+1}, A) with the goal prior c_t as data and meta GFEMeta()/BetheMeta()
#   (future outcomes are missing). q(z, A) = q(z) q(A); the message on z into each goal node starts
#   uniform (functional dependencies) so the loop through the node can start.

@model function tmaze_model(c, A_prior, D, B, policy, go_meta, n)
    A ~ DirichletCollection(A_prior)
    z[1] ~ Categorical(D)
    for t in eachindex(policy)
        z[t + 1] ~ DiscreteTransition(z[t], B[policy[t]])
        c[t] ~ GoalObservation(z[t + 1], A) where {
            meta = go_meta, dependencies = RequireMessageFunctionalDependencies(z = Categorical(fill(1 / n, n)))
        }
    end
end

@constraints function tmaze_constraints()
    q(z, A) = q(z) * q(A)
end
