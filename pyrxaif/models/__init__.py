"""Public model classes: discrete POMDPs in pymdp's conventions, linear-Gaussian SSMs in dynamax's."""
from pyrxaif.models.discrete_pomdp import DiscretePOMDP  # noqa: F401
from pyrxaif.models.linear_gaussian_ssm import LinearGaussianSSM  # noqa: F401
