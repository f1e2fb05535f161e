"""The worker container's health check: does its worker answer, and can it start a sandbox now?

    python scripts/worker_ready.py     exit 0 when this host's Celery worker answers a ping and a
                                       trivial program ran in the configured sandbox backend
                                       (SANDBOX_BACKEND) and exited 0

A worker whose process is up but cannot create namespaces, cgroups or its seccomp filter (a
container started without the privileges the sandbox needs, a missing bubblewrap) is not ready:
this runs the same backend the worker's tasks use, with the default limits, on a one-line probe.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

PROBE = "import sys\nsys.stdout.write('sandbox ready')\n"


def main() -> int:
    import django

    django.setup()
    from django.conf import settings

    from config.celery import app
    from sandbox.backends import get_backend
    from sandbox.backends.base import STATUS_OK
    from sandbox.limits import DEFAULT_LIMITS

    node = f"celery@{socket.gethostname()}"
    if not app.control.ping(destination=[node], timeout=5.0):
        print(f"worker {node} does not answer")
        return 1
    backend = get_backend(settings.SANDBOX_BACKEND)
    work = Path(tempfile.mkdtemp(prefix="cropbias-ready-"))
    try:
        os.chmod(work, 0o755)
        (work / "probe.py").write_text(PROBE)
        os.chmod(work / "probe.py", 0o644)
        result = backend.execute(work, limits=DEFAULT_LIMITS, run_id=f"ready-{uuid.uuid4().hex[:12]}")
        try:
            ok = result.status == STATUS_OK
            print(f"sandbox {backend.name}: {result.status}" + ("" if ok else f" ({result.error})"))
            return 0 if ok else 1
        finally:
            result.cleanup()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
