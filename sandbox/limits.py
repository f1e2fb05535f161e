"""Resource limits of one sandboxed probe run; a challenge may override any of them.

| field | default | what it caps |
|---|---|---|
| `wall_s` | 300 s | wall clock; the kernel or the container itself ends the run a few seconds later whatever the worker does |
| `cpu_s` | 240 s | CPU time of the whole run |
| `memory_bytes` | 2 GiB | memory, including what the run writes to `/tmp` and `/dev/shm` (both are RAM) |
| `pids` | 256 | processes and threads |
| `output_bytes`, `output_files` | 512 MiB, 10,000 | the output directory |
| `tmp_bytes` | 256 MiB | the private `/tmp` |
| `shm_bytes` | 64 MiB | the private `/dev/shm` (POSIX shared memory, multiprocessing's semaphores) |
| `max_images`, `max_pixels` | 5,000, 25 megapixels | the image set (checked after the run) |
| `log_bytes` | 1 MiB | the tail of stdout and of stderr kept; 64× that printed in all ends the run |

Scratch space is `tmp_bytes + shm_bytes` at most, both inside `memory_bytes`.
"""
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
    shm_bytes: int = 64 * MiB
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
