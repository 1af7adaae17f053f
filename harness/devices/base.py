"""The one small base class every device backend implements.

A device is where the swap runner runs: this host, an Android phone over adb, an
iOS device, or SwapLab's own virtual Android device. Suites only talk to this
interface, so a suite written for the host runs unchanged on a phone.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path


class DeviceError(RuntimeError):
    """A device failed in a way that ends the current test (dropped, storage full...).

    The message always names the device.
    """


class DeviceDisconnected(DeviceError):
    """The device went away mid-run."""


@dataclasses.dataclass(frozen=True)
class RunResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclasses.dataclass(frozen=True)
class SyncReport:
    """What a push of a set of files did: only changed files cross the link."""

    pushed: tuple[str, ...]
    skipped: tuple[str, ...]
    bytes_pushed: int


@dataclasses.dataclass(frozen=True)
class SensorReading:
    """One sensor value. `name` carries the unit (`cpu0_temp_c`, `battery_current_ua`).

    `value` is None when the sensor could not be read; `reason` then says why.
    `simulated` is True where the value comes from a model, not a measurement.
    """

    name: str
    value: float | None
    simulated: bool = False
    reason: str = ""


class BackgroundProcess(abc.ABC):
    """A process started on the device that runs while the caller does other work."""

    @abc.abstractmethod
    def stop(self, timeout_s: float = 10.0) -> RunResult:
        """Stop the process (if still running) and return what it produced."""


#: device property with which SwapLab's virtual devices say what emulates their CPU
CPU_EMULATION_PROPERTY = "ro.swaplab.cpu_emulation"


class Device(abc.ABC):
    """Base class of all device backends.

    Attributes every backend fills in at discovery:
      kind        "local", "android", "ios" or "virtual"
      serial      unique id (adb serial, UDID, "local")
      name        human name (product model, host name); untrusted text
      platform    "linux", "android" or "ios"
      abi         runner build to use: "x86_64", "arm64-v8a", ...
      properties  identity properties used for profile matching and the record,
                  e.g. {"ro.soc.model": "SM6450", "ro.board.platform": "parrot"}
      workdir     folder on the device where the runner, models and inputs live
    """

    kind: str = "abstract"

    def __init__(
        self,
        serial: str,
        name: str,
        platform: str,
        abi: str,
        properties: Mapping[str, str],
        workdir: str,
    ) -> None:
        self.serial = serial
        self.name = name
        self.platform = platform
        self.abi = abi
        self.properties = dict(properties)
        self.workdir = workdir

    # --- identity -------------------------------------------------------
    @property
    def simulated(self) -> bool:
        """True when sensor values are modelled rather than measured."""
        return False

    @property
    def cpu_emulation(self) -> str | None:
        """What emulates the device's CPU (e.g. "qemu-aarch64 on x86_64"), or None when
        its programs run on a CPU of their own ABI. Under emulation, time and memory are
        the emulator's, not the phone's: targets on them are not checked. SwapLab's
        virtual devices announce it in the property CPU_EMULATION_PROPERTY."""
        return self.properties.get(CPU_EMULATION_PROPERTY) or None

    def describe(self) -> dict:
        """Everything the run record keeps about this device."""
        return {
            "kind": self.kind,
            "serial": self.serial,
            "name": self.name,
            "platform": self.platform,
            "abi": self.abi,
            "simulated": self.simulated,
            "cpu_emulation": self.cpu_emulation,
            "properties": dict(self.properties),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.serial!r} ({self.name!r}, {self.abi})>"

    def reconnect(self, timeout_s: float = 20.0) -> str:
        """Bring a device that dropped back (harness.fleet: once per run); returns what
        was done, raises DeviceError when it cannot come back."""
        raise DeviceError(f"device {self.serial}: the {self.kind} backend cannot reconnect")

    # --- files ----------------------------------------------------------
    @abc.abstractmethod
    def sync(self, files: Mapping[str, Path]) -> SyncReport:
        """Make `workdir/<relative path>` hold each local file; skip files whose
        content hash on the device already matches."""

    @abc.abstractmethod
    def pull(self, remote_path: str, local_path: Path) -> None:
        """Copy a file from the device (absolute, or relative to workdir)."""

    @abc.abstractmethod
    def listdir(self, remote_path: str) -> list[str]:
        """Names in a folder on the device (untrusted text)."""

    @abc.abstractmethod
    def remove(self, remote_path: str) -> None:
        """Delete a file or folder tree on the device."""

    # --- processes ------------------------------------------------------
    @abc.abstractmethod
    def run(
        self,
        argv: Sequence[str],
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        cpu_list: str | None = None,
    ) -> RunResult:
        """Run a program in workdir; real exit code, separate stdout and stderr.

        A timeout kills the process and returns `timed_out=True`. `cpu_list`
        (e.g. "4-7") pins the process to those CPUs where the platform can.
        """

    @abc.abstractmethod
    def start(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> BackgroundProcess:
        """Start a program in the background (for samplers and long runs)."""

    # --- sensors --------------------------------------------------------
    def read_sensors(self) -> list[SensorReading]:
        """Current temperatures, battery current/voltage, CPU frequencies.

        The default is "nothing measurable"; backends override.
        """
        return []
