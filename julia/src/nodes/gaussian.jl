# Gaussian potential algebra in natural form (ξ = Λμ, Λ), used by the ControlledTransition rules.

symmetrize(M) = (M + M') / 2

"Natural parameters (ξ, Λ) of a Gaussian message."
natural_params(m) = weightedmean_precision(m)

"Moments of q, with a zero covariance for a point mass."
moments_or_point(q::PointMass) = (mean(q), zeros(eltype(mean(q)), length(mean(q)), length(mean(q))))
moments_or_point(q) = mean_cov(q)

"E[log |W|] under q(W) (exact for a Wishart; log |W| for a point mass)."
expected_logdet(q::PointMass) = logdet(mean(q))
expected_logdet(q) = mean(logdet, q)

"∫ exp(ξᵀv − ½vᵀΛv) d v[drop] as natural parameters on v[keep]: (ξₖ − Λₖₒ Λₒₒ⁻¹ ξₒ, Λₖₖ − Λₖₒ Λₒₒ⁻¹ Λₒₖ)."
function gaussian_marginalise(ξ, Λ, keep::AbstractVector{Int})
    drop = setdiff(eachindex(ξ), keep)
    isempty(drop) && return ξ[keep], symmetrize(Λ[keep, keep])
    F = cholesky(Symmetric(Λ[drop, drop]))
    S = F \ hcat(ξ[drop], Λ[drop, keep])
    return ξ[keep] - Λ[keep, drop] * S[:, 1], symmetrize(Λ[keep, keep] - Λ[keep, drop] * S[:, 2:end])
end

"Condition the potential on v[known] = value: (ξᵣ − Λᵣₖ value, Λᵣᵣ) on the remaining entries."
function gaussian_condition(ξ, Λ, known::AbstractVector{Int}, value)
    rest = setdiff(eachindex(ξ), known)
    return ξ[rest] - Λ[rest, known] * value, Λ[rest, rest]
end

"Add a message (ξm, Λm) on the block `idx` of a potential."
function absorb!(ξ, Λ, idx, ξm, Λm)
    ξ[idx] .+= ξm
    Λ[idx, idx] .+= Λm
    return ξ, Λ
end
