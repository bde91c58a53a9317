from pyrxaif.models.discrete_pomdp import DiscretePOMDP  # noqa: F401
