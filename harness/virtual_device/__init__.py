"""SwapLab's virtual Android device: the device side of the adb protocol over TCP, a
sandboxed file system, Android-like shell tools and SIMULATED sensors. See README.md."""

from .faults import Faults, FaultSpecError, parse_faults
from .server import VirtualDevice

__all__ = ["FaultSpecError", "Faults", "VirtualDevice", "parse_faults"]
