"""Resource limits of one sandboxed probe run (DESIGN §7)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    """Every cap a run is held to; a challenge may override any field."""

    wall_s: float = 300.0
    cpu_s: int = 240
    memory_bytes: int = 2 * GiB
    pids: int = 256
    output_bytes: int = 512 * MiB
    output_files: int = 10_000
    tmp_bytes: int = 256 * MiB
    max_images: int = 5_000
    max_pixels: int = 25_000_000
    log_bytes: int = 1 * MiB

    @classmethod
    def from_dict(cls, overrides: dict | None) -> "Limits":
        """Defaults updated with a challenge's overrides; unknown keys are an error."""
        overrides = dict(overrides or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown sandbox limit(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return dataclasses.replace(cls(), **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


DEFAULT_LIMITS = Limits()
