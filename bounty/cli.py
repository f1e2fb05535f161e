"""Submit a probe from a terminal and watch it until it is measured. Standard library only.

    python -m bounty.cli token --username alice                      # prints your API token
    python -m bounty.cli submit probe.py --challenge SLUG [--title T] [--harm H] [--writeup FILE]
    python -m bounty.cli status 42

--url defaults to $BOUNTY_URL or http://127.0.0.1:8000; --token to $BOUNTY_TOKEN.
Exit codes: 0 measured (or beyond), 1 refused by the platform or failed, 2 usage or network error.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
# Once a submission reaches one of these, the platform has measured it (or it will never be).
MEASURED_OR_LATER = {"measured", "in_review", "accepted", "duplicate", "not_reproducible", "out_of_scope",
                     "needs_info", "published"}
GAVE_UP = {"failed", "platform_error", "cancelled"}
TIMEOUT_S = 30


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        self.status, self.body = status, body
        message = body.get("error") or body.get("detail") or json.dumps(body)
        field = body.get("field")
        super().__init__(f"{field}: {message}" if field else message)


def _request(url: str, *, token: str | None = None, data: bytes | None = None, content_type: str | None = None) -> dict:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    request.add_header("Accept", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read().decode("utf-8"))
        except ValueError:
            body = {"error": f"HTTP {exc.code} {exc.reason}"}
        raise ApiError(exc.code, body) from None


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """Encode a multipart/form-data body (RFC 7578): text fields, then files."""
    boundary = f"----bounty-cli-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n")
    for name, (filename, content) in files.items():
        safe = filename.replace('"', "").replace("\r", "").replace("\n", "")
        header = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{safe}"\r\n'
                  "Content-Type: application/octet-stream\r\n\r\n")
        parts.append(header.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def describe(status: dict) -> str:
    """One line of progress, in the words the submission page uses."""
    line = f"#{status['id']} {status['state']}"
    if status.get("queue_position"):
        line += f" — position {status['queue_position']} in the queue"
    elif status.get("elapsed_s") is not None:
        line += f" — running for {round(status['elapsed_s'])} s"
    elif status.get("progress"):
        line += f" — measured {status['progress']['done']} of {status['progress']['total']} images"
    if status.get("reason"):
        line += f": {status['reason']}"
    return line


def summarise(status: dict) -> str:
    lines = [describe(status)]
    run = status.get("run") or {}
    if status["state"] == "failed" and run.get("stderr_tail"):
        lines += ["--- stderr (tail) ---", run["stderr_tail"].rstrip()[-4000:]]
    metrics = status.get("metrics")
    if metrics:
        lines.append(f"measured on {metrics['model']} ({metrics['model_version']}):")
        for test in metrics["tests"]:
            if test.get("variant") is None:
                lines.append(f"  {test['id']}: n={test['n']} estimate={test['estimate']} p_holm={test['p_holm']}")
    if status.get("provisional_score") is not None:
        lines.append(f"provisional score: {status['provisional_score']}")
    lines.append(status["url"])
    return "\n".join(lines)


def watch(base: str, token: str, submission_id: int, *, interval: float, out=sys.stdout, timeout: float | None = None) -> dict:
    """Poll until measured (or given up), printing a line whenever what the platform says changes."""
    url = f"{base}/api/submissions/{submission_id}/"
    last, started = None, time.monotonic()
    while True:
        record = _request(url, token=token)
        line = describe(record)
        if line != last:
            print(line, file=out, flush=True)
            last = line
        if record["state"] in MEASURED_OR_LATER | GAVE_UP:
            return record
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"still {record['state']} after {timeout:.0f} s; run `status {submission_id}` later")
        time.sleep(interval)


def submit(base: str, token: str, *, challenge: str, probe_name: str, probe_content: bytes, title: str,
           harm_type: str, writeup: str = "") -> dict:
    """POST one submission through the API; returns its status record (raises ApiError)."""
    fields = {"title": title, "harm_type": harm_type}
    if writeup:
        fields["writeup"] = writeup
    body, content_type = multipart(fields, {"probe": (probe_name, probe_content)})
    return _request(f"{base}/api/challenges/{challenge}/submissions/", token=token, data=body,
                    content_type=content_type)


def status(base: str, token: str, submission_id: int) -> dict:
    return _request(f"{base}/api/submissions/{submission_id}/", token=token)


def cmd_submit(args) -> int:
    probe = Path(args.probe)
    created = submit(args.url, args.token, challenge=args.challenge, probe_name=probe.name,
                     probe_content=probe.read_bytes(), title=args.title or probe.stem.replace("_", " "),
                     harm_type=args.harm,
                     writeup=Path(args.writeup).read_text(encoding="utf-8") if args.writeup else "")
    print(f"submitted #{created['id']}: {created['url']}", flush=True)
    if args.no_wait:
        return 0
    final = watch(args.url, args.token, created["id"], interval=args.interval, timeout=args.timeout)
    print(summarise(final), flush=True)
    return 1 if final["state"] in GAVE_UP else 0


def cmd_status(args) -> int:
    record = status(args.url, args.token, args.submission)
    print(summarise(record))
    return 1 if record["state"] in GAVE_UP else 0


def cmd_token(args) -> int:
    password = os.environ.get("BOUNTY_PASSWORD") or getpass.getpass("Password: ")
    body, content_type = multipart({"username": args.username, "password": password}, {})
    print(_request(f"{args.url}/api/token/", data=body, content_type=content_type)["token"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bounty.cli", description="Crop-bias bounty client.")
    parser.add_argument("--url", default=os.environ.get("BOUNTY_URL", DEFAULT_URL), help="platform address")
    parser.add_argument("--token", default=os.environ.get("BOUNTY_TOKEN"), help="API token (or $BOUNTY_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser("submit", help="submit a probe and follow it until measured")
    submit.add_argument("probe", help="probe.py, or a .zip with probe.py at its root")
    submit.add_argument("--challenge", required=True, help="challenge slug")
    submit.add_argument("--title", help="finding title (default: the file name)")
    submit.add_argument("--harm", default="under-representation", help="self-assessed harm type")
    submit.add_argument("--writeup", help="a Markdown file with your writeup")
    submit.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    submit.add_argument("--timeout", type=float, default=None, help="stop waiting after this many seconds")
    submit.add_argument("--no-wait", action="store_true", help="print the submission and return")
    status = commands.add_parser("status", help="show a submission's state and results")
    status.add_argument("submission", type=int)
    token = commands.add_parser("token", help="print your API token (password from $BOUNTY_PASSWORD or a prompt)")
    token.add_argument("--username", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.url = args.url.rstrip("/")
    if args.command in ("submit", "status") and not args.token:
        print("error: give --token or set BOUNTY_TOKEN (get one with `python -m bounty.cli token --username NAME`)",
              file=sys.stderr)
        return 2
    handler = {"submit": cmd_submit, "status": cmd_status, "token": cmd_token}[args.command]
    try:
        return handler(args)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
