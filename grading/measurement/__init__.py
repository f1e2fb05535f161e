"""The measurement lives in probekit.measurement, so anyone can re-check a finding with the same code."""
from probekit.measurement import (
    build_composite,
    document_dumps,
    measure_chunk,
    measure_image_set,
    measurement_plan,
    observe_image_set,
    warm_up,
)

__all__ = ["build_composite", "document_dumps", "measure_chunk", "measure_image_set", "measurement_plan",
           "observe_image_set", "warm_up"]
