"""Extension point for reporters: each writes one output from a run record."""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path


class Reporter(abc.ABC):
    name: str = "abstract"

    @abc.abstractmethod
    def write(self, record: dict, run_dir: Path) -> Path | None:
        """Write this reporter's output into `run_dir`; return its path."""


#: Extra HTML report sections: f(record, run_dir) -> (title, html) or None. The html is
#: inserted as is (the provider escapes what it takes from the record).
SectionProvider = Callable[[dict, Path], "tuple[str, str] | None"]
SECTIONS: list[SectionProvider] = []


def register_section(provider: SectionProvider) -> None:
    if provider not in SECTIONS:
        SECTIONS.append(provider)
