# PyRxAIF tests: every node rule against the golden vectors of the JAX engine (tests/golden/*.json,
# written by tools/make_golden.py), plus model-level checks against closed forms.
# Run from the repository root:  julia --project=julia -e 'using Pkg; Pkg.test()'

using Test
using JSON3
using LinearAlgebra
using RxInfer
using ReactiveMP
using BayesBase
using ExponentialFamily
import ExponentialFamily: WishartFast   # not exported by ExponentialFamily 2.5
using PyRxAIF

const P = PyRxAIF
const GOLDEN = joinpath(@__DIR__, "..", "..", "tests", "golden")
const IN = QuoteNode(Symbol("in"))   # the interface name :in, spliced into @call_rule (see below)

"ARRAY = {shape, data (row-major, \"inf\"/\"-inf\" strings)} → a Julia array with the same indices."
function decode(x)
    shape = Int[s for s in x.shape]
    data = Float64[v isa AbstractString ? parse(Float64, v) : Float64(v) for v in x.data]
    isempty(shape) && return data[1]
    length(shape) == 1 && return data
    return permutedims(reshape(data, reverse(shape)...), length(shape):-1:1)
end

load_golden(family) = JSON3.read(read(joinpath(GOLDEN, family * ".json"), String))
inputs(c) = Dict(String(k) => decode(v) for (k, v) in pairs(c.inputs))
outputs(c) = Dict(String(k) => decode(v) for (k, v) in pairs(c.outputs))

"Equal up to the golden tolerance, with −Inf entries required at the same places."
function agrees(a, b, doc)
    size(a) == size(b) || return false
    fa, fb = isfinite.(a), isfinite.(b)
    fa == fb || return false
    all(a[.!fa] .== b[.!fb]) || return false
    return isapprox(a[fa], b[fb]; rtol = doc.rtol, atol = doc.atol * 10 + 1e-9 * maximum(abs, b[fb]; init = 0.0))
end
agrees(a::Real, b::Real, doc) = isapprox(a, b; rtol = doc.rtol, atol = doc.atol * 10)

@testset "PyRxAIF" begin
    @testset "golden: transition" begin
        doc = load_golden("transition")
        for c in doc.cases
            i, o = inputs(c), outputs(c)
            d, m = Int(c.params.d), Int(c.params.m)
            n = d + m
            meta = ControlledTransitionMeta(d, m)
            q_a = MvNormalMeanCovariance(i["ab_mean"], i["ab_cov"])
            q_Wpoint = PointMass(i["w_mean"])
            msg(key) = MvNormalWeightedMeanPrecision(i[key * "_xi"], i[key * "_prec"])
            # joint over [z; u; z′] (golden order) → [y; x; u] (node order)
            perm = vcat(collect((n + 1):(n + d)), collect(1:d), collect((d + 1):n))
            q_joint = MvNormalMeanCovariance(i["joint_mean"][perm], i["joint_cov"][perm, perm])
            f = c.function
            @testset "$(c.name)" begin
                if f == "expected_quadratic"
                    @test agrees(P.expected_quadratic(i["ab_mean"], i["ab_cov"], i["w_mean"], d, n), o["K"], doc)
                elseif f == "forward_message"
                    out = @call_rule ControlledTransition(:y, Marginalisation) (m_x = msg("msg_z"), m_u = msg("msg_u"), q_a = q_a, q_W = q_Wpoint, meta = meta)
                    ξ, Λ = weightedmean_precision(out)
                    @test agrees(ξ, o["xi"], doc) && agrees(Λ, o["prec"], doc)
                elseif f == "message_to_state"
                    out = @call_rule ControlledTransition(:x, Marginalisation) (m_y = msg("msg_next"), q_u = PointMass(i["u"]), q_a = q_a, q_W = q_Wpoint, meta = meta)
                    ξ, Λ = weightedmean_precision(out)
                    @test agrees(ξ, o["xi"], doc) && agrees(Λ, o["prec"], doc)
                elseif f == "message_to_control"
                    out = @call_rule ControlledTransition(:u, Marginalisation) (m_y = msg("msg_next"), m_x = msg("msg_z"), q_a = q_a, q_W = q_Wpoint, meta = meta)
                    ξ, Λ = weightedmean_precision(out)
                    @test agrees(ξ, o["xi"], doc) && agrees(Λ, o["prec"], doc)
                elseif f == "message_to_ab"
                    out = @call_rule ControlledTransition(:a, Marginalisation) (q_y_x_u = q_joint, q_W = q_Wpoint, meta = meta)
                    ξ, Λ = weightedmean_precision(out)
                    @test agrees(ξ, o["xi"], doc) && agrees(Λ, o["prec"], doc)
                elseif f == "message_to_w"
                    out = @call_rule ControlledTransition(:W, Marginalisation) (q_y_x_u = q_joint, q_a = q_a, meta = meta)
                    @test agrees(out.ν, o["df"], doc) && agrees(Matrix(out.invS), o["inv_scale"], doc)
                elseif f == "average_energy"
                    q_W = WishartFast(i["w_df"], i["w_inv_scale"])
                    @test agrees(mean(q_W), i["w_mean"], doc)
                    U = P.transition_average_energy(P.transition_stats(meta, q_joint), i["ab_mean"], i["ab_cov"], mean(q_W), mean(logdet, q_W), d, n)
                    @test agrees(U, o["U"], doc)
                else
                    error("unknown golden function $(f)")
                end
            end
        end
    end

    @testset "golden: goal_observation" begin
        doc = load_golden("goal_observation")
        for c in doc.cases
            i, o = inputs(c), outputs(c)
            q_A = DirichletCollection(i["a"])
            Abar, Lbar, hbar = P.a_stats(q_A)
            s, d, logc, x = i["s"], i["d"], i["log_c"], i["x"]
            f = c.function
            @testset "$(c.name)" begin
                if f == "a_stats_dirichlet"
                    @test agrees(Abar, o["A_bar"], doc) && agrees(Lbar, o["L_bar"], doc) && agrees(hbar, o["h_bar"], doc)
                elseif f == "bethe_internal_x"
                    @test agrees(P.bethe_internal_x(s, Lbar, logc), o["x_hat"], doc)
                elseif f == "bethe_message_z"
                    @test agrees(P.bethe_message_z(s, Lbar, logc), o["probs"], doc)
                elseif f == "bethe_message_A"
                    @test agrees(P.bethe_message_A(s, Lbar, logc), o["concentration"], doc)
                    # the node's rule with x missing sends the same message (it reads q(A))
                    out = @call_rule GoalObservation(:A, Marginalisation) (q_c = PointMass(exp.(logc)), q_z = Categorical(s), q_A = q_A, meta = BetheMeta())
                    @test agrees(out.α, o["concentration"], doc)
                elseif f == "bethe_message_c"
                    @test agrees(P.bethe_message_c(s, Lbar, logc), o["concentration"], doc)
                elseif f == "bethe_average_energy"
                    @test agrees(P.bethe_average_energy(s, Lbar, logc), o["U"], doc)
                elseif f == "observed_message_z"
                    @test agrees(P.observed_message_z(x, Lbar), o["probs"], doc)
                    out = @call_rule GoalObservation(:z, Marginalisation) (m_z = Categorical(d), q_c = PointMass(exp.(logc)), q_A = q_A, meta = GFEMeta(x))
                    @test agrees(probvec(out), o["probs"], doc)
                elseif f == "observed_message_A"
                    @test agrees(P.observed_message_A(x, s), o["concentration"], doc)
                    out = @call_rule GoalObservation(:A, Marginalisation) (q_c = PointMass(exp.(logc)), q_z = Categorical(s), q_A = q_A, meta = BetheMeta(x))
                    @test agrees(out.α, o["concentration"], doc)
                elseif f == "observed_message_c"
                    @test agrees(P.observed_message_c(x), o["concentration"], doc)
                elseif f == "observed_average_energy"
                    @test agrees(P.observed_average_energy(x, s, Lbar, logc), o["U"], doc)
                elseif f == "gfe_average_energy"
                    @test agrees(P.gfe_average_energy(s, Abar, hbar, logc), o["U"], doc)
                elseif f == "gfe_message_c"
                    @test agrees(P.gfe_message_c(s, Abar), o["concentration"], doc)
                    out = @call_rule GoalObservation(:c, Marginalisation) (q_z = Categorical(s), q_A = q_A, meta = GFEMeta())
                    @test agrees(out.alpha, o["concentration"], doc)
                elseif f == "gfe_message_z_newton"
                    k = Int(c.params.newton_iterations)
                    @test isapprox(P.gfe_message_z_newton(log.(d), d, Abar, hbar, logc; iterations = k), o["probs"]; rtol = 1e-6, atol = 1e-8)
                    out = @call_rule GoalObservation(:z, Marginalisation) (m_z = Categorical(d), q_c = PointMass(exp.(logc)), q_A = q_A, meta = GFEMeta(nothing; newton_iterations = k))
                    @test isapprox(probvec(out), o["probs"]; rtol = 1e-6, atol = 1e-8)
                else
                    error("unknown golden function $(f)")
                end
            end
        end
    end

    @testset "golden: channels" begin
        doc = load_golden("channels")
        for c in doc.cases
            i, o = inputs(c), outputs(c)
            f = c.function
            @testset "$(c.name)" begin
                if f == "dynamics_log_kernel"
                    K = c.params.variant == "bp" ? P.dynamics_log_kernel(i["log_B"], i["log_E"]) :
                        P.dynamics_log_kernel(i["log_B"], i["log_E"]; log_r_u = i["log_r_u"], log_r_x = i["log_r_x"])
                    @test agrees(K, o["K"], doc)
                elseif f == "observation_log_message"
                    @test agrees(P.observation_log_message(i["log_A"], i["log_r_y"], i["log_rho"]), o["l"], doc)
                elseif f == "epistemic_log_prior"
                    @test agrees(P.epistemic_log_prior(i["log_A"], i["log_rho"]), o["p"], doc)
                elseif f == "planning_channel"
                    @test agrees(P.planning_channel(i["log_b"]), o["r"], doc)
                elseif f == "dynamics_channel"
                    @test agrees(P.dynamics_channel(i["log_b"], i["log_B"]), o["r"], doc)
                elseif f == "observation_channels"
                    r, rho = P.observation_channels(i["log_A"], i["log_r_y"], i["log_rho"], i["log_q"])
                    @test agrees(r, o["r_y"], doc) && agrees(rho, o["rho"], doc)
                elseif f == "damp"
                    new = i["log_r_u"][:, end:-1:1]
                    new = new .- P.lse(new; dims = 2)
                    @test agrees(P.damp(i["log_r_u"], new, Float64(c.params.lam)), o["r"], doc)
                else
                    error("unknown golden function $(f)")
                end
            end
        end
    end

    @testset "golden: discrete_transition (ReactiveMP's DiscreteTransition)" begin
        doc = load_golden("discrete_transition")
        for c in doc.cases
            i, o = inputs(c), outputs(c)
            f = c.function
            @testset "$(c.name)" begin
                if f == "forward_message"
                    out = @call_rule DiscreteTransition(:out, Marginalisation) (m_in = Categorical(i["m_in"]), q_a = PointMass(i["B"]), meta = nothing)
                elseif f == "backward_message"
                    # `:in` as a call argument is valid Julia but tree-sitter-julia rejects it; the
                    # symbol is spliced into the macro call instead (same expression after @eval).
                    out = @eval @call_rule DiscreteTransition($IN, Marginalisation) (m_out = $(Categorical(i["m_out"])), q_a = $(PointMass(i["B"])), meta = nothing)
                else
                    error("unknown golden function $(f)")
                end
                @test agrees(probvec(out), o["probs"], doc)
            end
        end
    end

    @testset "LDS smoothing equals dense Gaussian conditioning" begin
        d, m, T = 2, 1, 6
        H = [0.9 0.2 0.5; -0.1 0.8 0.3]
        W = [4.0 0.5; 0.5 3.0]
        m1, V1 = [0.3, -0.2], [1.0 0.1; 0.1 0.5]
        U = reshape(collect(range(-1.0, 1.0; length = T - 1)), m, T - 1)
        Y = [sin(0.3t + k) for k in 1:d, t in 1:T]
        Ycov = cat([Matrix(Diagonal([0.2, 0.3])) for _ in 1:T]...; dims = 3)
        res = P.py_smooth_lds(Y, Ycov, U, vec(permutedims(H)), W, m1, V1)
        # dense joint precision of z_{1:T} given y (independent closed form)
        A, B = H[:, 1:d], H[:, (d + 1):end]
        Λ = zeros(d * T, d * T); ξ = zeros(d * T)
        blk(t) = ((t - 1) * d + 1):(t * d)
        Λ[blk(1), blk(1)] += inv(V1); ξ[blk(1)] += V1 \ m1
        for t in 1:(T - 1)
            Λ[blk(t), blk(t)] += A' * W * A
            Λ[blk(t + 1), blk(t + 1)] += W
            Λ[blk(t), blk(t + 1)] -= A' * W
            Λ[blk(t + 1), blk(t)] -= W * A
            ξ[blk(t)] -= A' * W * B * U[:, t]
            ξ[blk(t + 1)] += W * B * U[:, t]
        end
        for t in 1:T
            R = Ycov[:, :, t]
            Λ[blk(t), blk(t)] += inv(R); ξ[blk(t)] += R \ Y[:, t]
        end
        Σ = inv(Symmetric(Λ)); μ = Σ * ξ
        for t in 1:T
            @test res["means"][:, t] ≈ μ[blk(t)] rtol = 1e-8
            @test res["covs"][:, :, t] ≈ Σ[blk(t), blk(t)] rtol = 1e-8
        end
    end

    @testset "LDS learning: free energy decreases" begin
        d, m, T = 2, 1, 30
        H = [0.95 0.1 0.2; -0.1 0.9 0.4]
        U = reshape([sin(0.4t) for t in 1:(T - 1)], m, T - 1)
        Z = zeros(d, T); Z[:, 1] = [1.0, 0.0]
        for t in 1:(T - 1)
            Z[:, t + 1] = H * vcat(Z[:, t], U[:, t]) + 0.05 * [cos(7t), sin(5t)]
        end
        Ycov = cat([Matrix(0.01I, d, d) for _ in 1:T]...; dims = 3)
        res = P.py_learn_lds(Z, Ycov, U, zeros(d), Matrix(1.0I, d, d), zeros(d * (d + m)), Matrix(10.0I, d * (d + m), d * (d + m)),
            d + 2.0, Matrix(1.0I, d, d), 15)
        fe = res["free_energy"]
        @test all(diff(fe)[2:end] .<= 1e-6 * abs.(fe[3:end]))
        @test isapprox(reshape(res["ab_mean"], d + m, d)', H; atol = 0.15)
    end

    @testset "T-maze policies: finite free energies in bits" begin
        ns, mo = 8, 16
        A_prior = fill(0.1, mo, ns)
        B = zeros(ns, ns, 4)
        for u in 1:4, j in 1:ns
            B[min(ns, 2 * (u - 1) + 1 + (j - 1) % 2), j, u] = 1.0
        end
        D = vcat([0.5, 0.5], zeros(ns - 2))
        c = repeat([0.0, 0.0, 2.0, -2.0], 4)
        policies = [1 4; 2 2]
        G = P.py_tmaze_policy_free_energies(A_prior, c, D, B, policies, "GFE", 6, 2)
        @test length(G) == 2 && all(isfinite, G)
    end
    @testset "golden: rollout (the whole grid-world planner, every method)" begin
        doc = load_golden("rollout")
        for c in doc.cases
            i, o = inputs(c), outputs(c)
            @testset "$(c.name)" begin
                groups = [i["log_A_$(g)"] for g in 0:(Int(c.params.groups) - 1)]
                spec = RolloutSpec(Int.(i["succ"]) .+ 1, i["log_B"], groups, i["log_C"], i["log_E"])
                method = rollout_method(String(c.params.method); damping = c.params.damping,
                    n_iter = Int(c.params.n_iter), obs_weight = c.params.obs_weight)
                r = plan_rollout(spec, i["log_b0"], method, Int(c.params.horizon))
                @test agrees(r.log_q_u0, o["log_q_u0"], doc)
                @test agrees(r.free_energy, o["free_energy"], doc)
                @test agrees(r.channel_change, o["channel_change"], doc)
                @test agrees(r.final_free_energy, o["final_free_energy"], doc)
            end
        end
        @test_throws ArgumentError rollout_method("efe")
    end

    @testset "golden: linear_gaussian_plan (one linearised plan, time-varying chain)" begin
        doc = load_golden("linear_gaussian_plan")
        for c in doc.cases
            i, o = inputs(c), outputs(c)
            @testset "$(c.name)" begin
                H1 = size(i["B"], 1)
                A = [i["A"][k, :, :] for k in 1:H1]
                B = [i["B"][k, :, :] for k in 1:H1]
                S = [i["W_cov"][k, :, :] for k in 1:H1]
                cs = [i["c"][k, :] for k in 1:H1]
                steps = [t for t in 2:(H1 + 1) if i["goal_mask"][t] > 0]
                goal_covs = [Matrix(Diagonal(1 ./ (i["goal_prec"] .* i["goal_mask"][t]))) for t in steps]
                u_cov = Matrix(Diagonal(1 ./ i["u_prec"]))
                qu, qz = plan_linear_gaussian(i["z_start"], A, B, cs, S, i["z_goal"], goal_covs, steps, u_cov)
                # golden u has H rows: the last (u_H, used by no transition) keeps its prior
                @test agrees(permutedims(reduce(hcat, mean.(qu))), o["u_means"][1:H1, :], doc)
                for k in 1:H1
                    @test agrees(Matrix(cov(qu[k])), o["u_covs"][k, :, :], doc)
                end
                @test agrees(permutedims(reduce(hcat, mean.(qz))), o["z_means"][2:end, :], doc)
                # the bridge with Python's layout (pyrxaif.engines.julia_layout): (H1, ...) stacks
                # move their leading axis last, c becomes (d, H1); results come back the same way
                lead_last(X) = permutedims(X, (2, 3, 1))
                r = P.py_plan_linear_gaussian(i["z_start"], lead_last(i["A"]), lead_last(i["B"]), permutedims(i["c"]),
                    lead_last(i["W_cov"]), i["z_goal"], cat(goal_covs...; dims = 3), steps, u_cov)
                @test agrees(permutedims(r["u_means"]), o["u_means"][1:H1, :], doc)
                @test agrees(permutedims(r["u_covs"], (3, 1, 2)), o["u_covs"][1:H1, :, :], doc)
                @test agrees(permutedims(r["z_means"]), o["z_means"][2:end, :], doc)
            end
        end
    end

    @testset "T-maze evaluation with clamped outcomes: conjugate q(A)" begin
        ns, mo = 8, 16
        A_prior = fill(0.1, mo, ns) .+ 0.9 .* rand(mo, ns)
        B = zeros(ns, ns, 2, 1)
        for t in 1:2, j in 1:ns
            B[j, j, t, 1] = 1.0
        end
        C = repeat([0.0, 0.0, 2.0, -2.0], 4, 2)
        X = zeros(mo, 2)
        X[3, 1] = 1.0
        X[7, 2] = 1.0
        D = fill(1 / ns, ns)
        for meta in ("GFE", "BFE")
            r = P.py_tmaze_evaluate(A_prior, C, D, B, X, [1, 1], meta, 10, 2, 20)
            @test isfinite(r["G"][1])
            # each observed outcome adds x sᵀ: one unit of mass, all of it in the observed row
            ΔA = r["A"][:, :, 1] .- A_prior
            @test sum(ΔA) ≈ 2.0
            @test sum(ΔA[3, :]) ≈ 1.0 && sum(ΔA[7, :]) ≈ 1.0
        end
    end

    @testset "golden: tmaze_evaluation (whole T-maze model, Bethe, a missing outcome)" begin
        doc = load_golden("tmaze_evaluation")
        for c in doc.cases
            i, o = inputs(c), outputs(c)
            @testset "$(c.name)" begin
                P_, T = size(i["trans"], 1), size(i["trans"], 2)
                # trans (P, T, n, n) → B (n, n, T, P); C (T, m) → (m, T); x (T, m) → (m, T)
                B = permutedims(i["trans"], (3, 4, 2, 1))
                r = P.py_tmaze_evaluate(i["A_prior"], permutedims(i["C"]), i["D"], B, permutedims(i["x"]),
                    Int.(i["observed"]), "BFE", Int(c.params.iterations), Int(c.params.burn_in), 20)
                tol = Float64(c.params.rtol)
                @test isapprox(r["G"], o["G"]; rtol = tol)
                @test isapprox(permutedims(r["A"], (3, 1, 2)), o["A_posterior"]; rtol = tol)
            end
        end
    end

    @testset "LDS planning with the last goal before the horizon: the graph ends at the goal" begin
        d, m = 2, 1
        a = vec(permutedims([0.9 0.2 0.5; -0.1 0.8 0.3]))
        W, u_cov = [4.0 0.5; 0.5 3.0], reshape([0.25], 1, 1)
        z1, goal = [1.0, -0.5], [-1.0, 2.0]
        short = P.py_plan_lds(z1, 1e-8 * I(2), goal, Matrix(0.02I, 2, 2), a, W, u_cov, 1, 2, [2])
        long = P.py_plan_lds(z1, 1e-8 * I(2), goal, Matrix(0.02I, 2, 2), a, W, u_cov, 3, 2, [2])
        @test size(long["u_means"]) == (m, 3)
        @test long["u_means"][:, 1] ≈ short["u_means"][:, 1] rtol = 1e-10
        @test long["u_means"][:, 2:3] == zeros(m, 2)                  # after the goal: the prior
        @test long["u_covs"][:, :, 2] == u_cov && long["u_covs"][:, :, 3] == u_cov
        A = reshape(a, d + m, d)'[:, 1:d]
        @test long["z_means"][:, 4] ≈ A * long["z_means"][:, 3] rtol = 1e-12
        @test_throws ArgumentError P.py_plan_lds(z1, 1e-8 * I(2), goal, Matrix(0.02I, 2, 2), a, W, u_cov, 3, 2, [5])
    end
end
