"""A clock that only moves when a test sleeps on it: cool-down and gate loops run in no
real time and deterministically."""

from __future__ import annotations


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s
