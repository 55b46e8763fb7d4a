"""What a calibration did, step by step: the events the result's ``log`` shows its reader.

Each step adds an event tagged with its stage (``catalogue``, ``match``, ``fit``, ``choice``,
``zeropoint``, ``limit``, ``target``, ``image`` ...); the result's ``log`` is their messages in
order. The frame's events and the alert's are kept apart, so a path that measures the alert
another way (forced photometry on an image) shows only its own measurement's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LogEvent:
    """One step of a calibration: its stage and the sentence a user reads."""

    stage: str
    message: str


@dataclass
class CalibrationLog:
    """The events of one calibration, in the order they happened."""

    events: list[LogEvent] = field(default_factory=list)

    def add(self, stage: str, message: str) -> None:
        self.events.append(LogEvent(stage, message))

    def __iter__(self) -> Iterator[LogEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __add__(self, other: CalibrationLog) -> CalibrationLog:
        return CalibrationLog([*self.events, *other.events])

    def lines(self) -> list[str]:
        """The messages in order: the result's ``log``."""
        return [e.message for e in self.events]
