"""A faithful Jira Cloud simulator (OAuth 2.0 3LO + REST API v2/v3 + agile) over real HTTP.

    from jira_assets.simulator import Simulator, SimulatorConfig
    with Simulator(SimulatorConfig(seed=7, issues=500)) as sim:
        info = sim.info()
"""
from .config import SimulatorConfig
from .simulator import Simulator
from .truth import GroundTruth

__all__ = ["Simulator", "SimulatorConfig", "GroundTruth"]
