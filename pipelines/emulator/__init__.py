"""A faithful local emulator of the Recoup API, for tests, benchmarks and the demo."""

from pipelines.emulator.server import EmulatorServer
from pipelines.emulator.world import World

__all__ = ["EmulatorServer", "World"]
