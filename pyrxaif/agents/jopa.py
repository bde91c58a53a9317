"""Deprecated alias of :mod:`pyrxaif.agents.pixel_control` (the pixels-to-control agent, named after the
reference project JOPA). Import from :mod:`pyrxaif.agents.pixel_control` instead."""

import warnings

from pyrxaif.agents.pixel_control import *  # noqa: F401,F403
from pyrxaif.agents.pixel_control import planner, run_episode  # noqa: F401

warnings.warn("pyrxaif.agents.jopa is deprecated: use pyrxaif.agents.pixel_control", DeprecationWarning,
              stacklevel=2)
