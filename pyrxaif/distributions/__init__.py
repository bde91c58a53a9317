"""Exponential-family messages and beliefs in natural form (all JAX pytrees)."""

from pyrxaif.distributions.discrete import Categorical, Dirichlet, MatrixDirichlet
from pyrxaif.distributions.gaussian import MvNormal, check_precision
from pyrxaif.distributions.kronecker import KroneckerSumNormal, kronecker_factors
from pyrxaif.distributions.wishart import Wishart

__all__ = ["MvNormal", "KroneckerSumNormal", "kronecker_factors", "Wishart", "Categorical", "Dirichlet", "MatrixDirichlet", "check_precision"]
