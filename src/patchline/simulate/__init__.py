"""A simulated fleet against a real Patchline server, on simulated time the server shares.

    FailureModel / BuildFailure / Offline   what goes wrong, as data (failures)
    SimWorld                                the server it runs against: made, started
                                            on a home, or reached by URL (world)
    SimDevice                               one device's state and one step of it (device)
    Simulation                              the days, steps and tallies (fleet)
    SimulationReport / DayTally             what happened, per day and against the
                                            server's own view (report)

Only the command line (``patchline simulate``) imports this package.
"""

from patchline.simulate.failures import BuildFailure, FailureModel, Offline
from patchline.simulate.fleet import Simulation, SimulationOptions
from patchline.simulate.report import DayTally, SimulationReport
from patchline.simulate.world import SimWorld

__all__ = [
    "BuildFailure",
    "DayTally",
    "FailureModel",
    "Offline",
    "SimWorld",
    "Simulation",
    "SimulationOptions",
    "SimulationReport",
]
