from pyrxaif.models.discrete_pomdp import DiscretePOMDP
