"""A device's connection health during a run, as FAI-PEP's lab keeps it: a device that
drops is reconnected once and its current test retried once; a second drop, or a
reconnect that fails, puts it offline for the rest of the run (its remaining tests skip
naming it and since when). Pure state; harness.fleet.retry drives it."""

from __future__ import annotations

import dataclasses

RETRY = "retry"
OFFLINE = "offline"
#: reconnects a device gets per run (then it is offline)
MAX_RECONNECTS = 1


@dataclasses.dataclass
class DeviceHealth:
    serial: str
    connects: int = 1  # discovery connected it
    drops: int = 0
    reconnects: int = 0
    retries: int = 0
    offline_since: str | None = None
    offline_reason: str = ""
    events: list[dict] = dataclasses.field(default_factory=list)

    @property
    def offline(self) -> bool:
        return self.offline_since is not None

    def note(self, time: str, event: str, test: str = "", detail: str = "") -> None:
        self.events.append({"time": time, "event": event, "test": test,
                            "detail": detail[:500]})

    def dropped(self, time: str, test: str, message: str) -> bool:
        """Count a drop; True when the device may be reconnected (then call
        `reconnected` or `go_offline`)."""
        self.drops += 1
        self.note(time, "drop", test, message)
        return self.reconnects < MAX_RECONNECTS and not self.offline

    def reconnected(self, time: str, test: str, how: str) -> None:
        self.connects += 1
        self.reconnects += 1
        self.retries += 1
        self.note(time, "reconnected; test retried", test, how)

    def go_offline(self, time: str, test: str, reason: str) -> None:
        if self.offline_since is None:
            self.offline_since = time
            self.offline_reason = reason
            self.note(time, "offline", test, reason)

    def skip_reason(self) -> str:
        return (f"device {self.serial} offline since {self.offline_since} "
                f"(after {self.drops} drop(s), {self.reconnects} reconnect(s)): "
                f"{self.offline_reason}")

    def as_record(self) -> dict:
        return dataclasses.asdict(self)
