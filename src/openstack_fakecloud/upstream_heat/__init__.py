"""Upstream OpenStack Heat run against fakecloud: the real-Heat integration gate and `hearth up --heat upstream`.

`runner.UpstreamHeat` installs (into its own virtualenv), configures, starts and stops it; `launcher.py`
is the one-process Heat that runs under that virtualenv's python; `heatconf` writes its configuration.
"""

from openstack_fakecloud.upstream_heat.runner import HEAT_REQUIREMENT, HeatInstallError, HeatStartError, UpstreamHeat

__all__ = ["HEAT_REQUIREMENT", "HeatInstallError", "HeatStartError", "UpstreamHeat"]
