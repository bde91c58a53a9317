"""Environments as ``gymnasium.Env`` subclasses, registered under ids ``pyrxaif/...``.

Registration uses string entry points, so importing this package does not import the environment
modules themselves.
"""

from gymnasium.envs.registration import register, registry

_ENVS = {
    "pyrxaif/PixelPendulum-v0": "pyrxaif.envs.pendulum:PixelPendulum",
    "pyrxaif/RotatingDigits-v0": "pyrxaif.envs.digits:RotatingDigits",
    "pyrxaif/TMaze-v0": "pyrxaif.envs.tmaze:TMaze",
    "pyrxaif/FrozenLake-v0": "pyrxaif.envs.frozenlake:EpistemicFrozenLake",
    "pyrxaif/RockSample-v0": "pyrxaif.envs.rocksample:RockSample",
    "pyrxaif/Wumpus-v0": "pyrxaif.envs.wumpus:WumpusWorld",
}

for _id, _entry in _ENVS.items():
    if _id not in registry:
        register(id=_id, entry_point=_entry)
