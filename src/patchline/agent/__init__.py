"""The device agent: find an update wherever one is, trust only what is signed, survive
interruptions, never brick the device, and say plainly what happened.

    Agent(DeviceDir(path), clock=SystemClock()).update()   one update run
    create_device(path, config, ...)                        a new simulated device
"""

from patchline.agent.agent import Agent
from patchline.agent.device import DeviceConfig, DeviceDir, HealthCheck, Limits
from patchline.agent.outcome import Attempt, UpdateResult
from patchline.agent.provision import create_device
from patchline.agent.slots import BootOutcome

__all__ = [
    "Agent",
    "Attempt",
    "BootOutcome",
    "DeviceConfig",
    "DeviceDir",
    "HealthCheck",
    "Limits",
    "UpdateResult",
    "create_device",
]
