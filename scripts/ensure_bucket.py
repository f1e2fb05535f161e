"""Create the S3 bucket named by S3_BUCKET if it is missing (compose's one-shot `migrate` step).

Reads the same environment as the settings' storage: S3_BUCKET, S3_ENDPOINT_URL, S3_REGION and the
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY pair. Without S3_BUCKET there is nothing to do (the files
stay on the local filesystem under VAR_DIR).
"""
from __future__ import annotations

import os
import sys


def main() -> int:
    bucket = os.environ.get("S3_BUCKET", "")
    if not bucket:
        print("S3_BUCKET is not set: files stay under VAR_DIR, no bucket to create")
        return 0
    import boto3
    from botocore.exceptions import ClientError

    region = os.environ.get("S3_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None, region_name=region)
    try:
        client.head_bucket(Bucket=bucket)
        print(f"bucket {bucket!r} exists")
        return 0
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            print(f"cannot reach bucket {bucket!r}: {exc}", file=sys.stderr)
            return 1
    extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    client.create_bucket(Bucket=bucket, **extra)
    print(f"bucket {bucket!r} created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
