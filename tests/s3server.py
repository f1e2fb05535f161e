"""A real S3-compatible server for the storage tests: moto in server mode, on a free port."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.conftest import free_port

ACCESS_KEY, SECRET_KEY, REGION = "cropbias-test", "cropbias-test-secret", "us-east-1"



class S3Server:
    """`python -m moto.server` as a child process; buckets made on demand."""

    def __init__(self, log_path: Path):
        self.port, self.log_path, self.proc = free_port(), log_path, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the S3 server exited at start: {self.log_path.read_text(errors='replace')[-2000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError("the S3 server did not listen in 60 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY)

    def bucket_create(self) -> str:
        name = f"cropbias-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(item["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
                      for item in page.get("Contents", []))

    def env(self, bucket: str) -> dict:
        """The environment a process needs to use `bucket` as its object storage."""
        return {"S3_BUCKET": bucket, "S3_ENDPOINT_URL": self.url, "S3_REGION": REGION,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
