"""Knobs of the event generator: scale, world size and fault rates."""

from __future__ import annotations

from dataclasses import dataclass, replace

FAULT_RATE_FIELDS = (
    "duplicate_rate",
    "late_rate",
    "too_late_rate",
    "malformed_rate",
    "bad_field_rate",
)


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate; the same config and interval always give byte-identical files."""

    seed: int = 7
    events_per_hour: int = 20_000  # mean landing lines per hour (scale knob)
    n_users: int = 5_000
    n_items: int = 2_000
    new_items_per_hour: int = 5  # new items appear over time (created_at inside the hour)
    files_per_hour: int = 2  # part files per hourly drop
    duplicate_rate: float = 0.01  # redelivered copies of a valid event, maybe in a later drop
    late_rate: float = 0.02  # events landing 1..2 hours after their hour (within lateness)
    too_late_rate: float = 0.002  # events landing 3..6 hours after their hour
    malformed_rate: float = 0.002  # lines that are not valid JSON objects
    bad_field_rate: float = 0.004  # JSON objects that break the landing contract

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if self.events_per_hour < 0 or self.new_items_per_hour < 0:
            raise ValueError("events_per_hour and new_items_per_hour must be >= 0")
        if self.n_users < 1 or self.n_items < 1 or self.files_per_hour < 1:
            raise ValueError("n_users, n_items and files_per_hour must be >= 1")
        rates = [getattr(self, name) for name in FAULT_RATE_FIELDS]
        if any(r < 0 for r in rates):
            raise ValueError("fault rates must be >= 0")
        if self.late_rate + self.too_late_rate > 1 or self.malformed_rate + self.bad_field_rate > 1:
            raise ValueError("late + too-late and malformed + bad-field rates must each be <= 1")
        if self.duplicate_rate > 1:
            raise ValueError("duplicate_rate must be <= 1")

    def with_fault_scale(self, scale: float) -> GeneratorConfig:
        """This config with every fault rate multiplied by `scale` (0 gives clean data)."""
        if scale < 0:
            raise ValueError("fault scale must be >= 0")
        return replace(self, **{name: getattr(self, name) * scale for name in FAULT_RATE_FIELDS})
