"""Public model classes."""
from pyrxaif.models.linear_gaussian_ssm import LinearGaussianSSM  # noqa: F401
