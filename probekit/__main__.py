"""`python -m probekit models|crop|run|verify` (also installed as the `probekit` command)."""
from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import warnings
from pathlib import Path

from probekit.crop import DEFAULT_RATIOS


def _cmd_models(args) -> int:
    from probekit.models import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            print(f"{row['name']:<20} {row['version']:<18} {', '.join(row['variants'])}")
            print(f"    {row['description']}")
    return 0


def _overlay(image, result, saliency, path: Path) -> None:
    """Image, saliency heat map, salient point and every crop window, as a PNG."""
    import numpy as np
    from PIL import Image, ImageDraw

    heat = np.zeros((*saliency.shape, 3), dtype=np.uint8)
    heat[..., 0] = (saliency * 255).astype(np.uint8)
    heat[..., 1] = (saliency * 96).astype(np.uint8)
    blended = Image.blend(image.convert("RGB"), Image.fromarray(heat), 0.45)
    draw = ImageDraw.Draw(blended)
    colours = ["#00e5ff", "#76ff03", "#ffea00", "#ff4081", "#ffffff"]
    for index, (key, (left, top, width, height)) in enumerate(result.crops.items()):
        colour = colours[index % len(colours)]
        draw.rectangle([left, top, left + width - 1, top + height - 1], outline=colour, width=3)
        draw.text((left + 6, top + 6), key, fill=colour)
    x, y = result.salient_point
    draw.ellipse([x - 8, y - 8, x + 8, y + 8], outline="#ff1744", width=4)
    blended.save(path)


def _cmd_crop(args) -> int:
    from PIL import Image, ImageOps

    from probekit.models import DEFAULT_MODEL, get_model

    try:
        model = get_model(args.model or DEFAULT_MODEL)
        with Image.open(args.image) as raw:
            image = ImageOps.exif_transpose(raw).convert("RGB")
        result = model.analyze(image, args.ratio or DEFAULT_RATIOS, keep_map=bool(args.overlay))
    except (OSError, ValueError) as exc:
        print(f"probekit crop: {exc}", file=sys.stderr)
        return 2
    if args.overlay:
        _overlay(image, result, result.saliency, Path(args.overlay))
    print(json.dumps(result.to_json(), indent=None if args.json else 1))
    return 0


def _checked(directory: Path, command: str):
    """The set in `directory` validated as the platform validates it, or None after printing every problem."""
    from probekit.imageset import ImageSetRejected, validate_image_set

    try:
        return validate_image_set(directory)
    except ImageSetRejected as exc:
        print(f"probekit {command}: the image set would be rejected: {exc}", file=sys.stderr)
        return None


def _set_report(image_set) -> dict:
    return {"path": str(image_set.root), "n_images": len(image_set.items), "groups": image_set.groups,
            "compose": image_set.compose, "primary": image_set.primary}


def _cmd_check(args) -> int:
    """Validate a set already written (by a probe run elsewhere): every problem at once, exit 1 if any."""
    image_set = _checked(Path(args.directory).resolve(), "check")
    if image_set is None:
        return 1
    print(json.dumps(_set_report(image_set), indent=1))
    return 0


def _cmd_run(args) -> int:
    probe = Path(args.probe).resolve()
    out = Path(args.out or "out").resolve()
    print("probekit run: running the probe locally, NOT sandboxed — only run code you trust.", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["PROBE_OUTPUT_DIR"] = str(out)
    cwd = os.getcwd()
    sys.path.insert(0, str(probe.parent))
    try:
        os.chdir(out)
        runpy.run_path(str(probe), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            print(f"probekit run: the probe exited with {exc.code}", file=sys.stderr)
            return 1
    finally:
        os.chdir(cwd)
    image_set = _checked(out, "run")
    if image_set is None:
        return 1
    report = _set_report(image_set)
    if args.measure:
        from probekit.measure import quick_summary
        from probekit.models import DEFAULT_MODEL, get_model

        report["measurement"] = quick_summary(image_set, get_model(args.model or DEFAULT_MODEL), DEFAULT_RATIOS)
    print(json.dumps(report, indent=1))
    return 0


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _cmd_verify(args) -> int:
    """Exit 0 on a match, 1 when the bundle differs, 2 when it is unusable; one line, never a traceback."""
    from probekit.bundle import BundleError, verify_bundle

    try:
        with warnings.catch_warnings():  # the answer is one line: no library warning beside it
            warnings.simplefilter("ignore")
            report = verify_bundle(args.bundle)
    except BundleError as exc:
        print(f"probekit verify: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - whatever the bytes, an unusable bundle is exit 2 and one line
        print(f"probekit verify: the bundle is unusable ({type(exc).__name__}: {_one_line(exc)[:300]})",
              file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    elif report["match"]:
        replication = report.get("replication")
        also = f"; replication {replication['status']} {replication['published_sha256']}" if replication else ""
        print(f"match {report['published_sha256']}{also}")
    else:
        differences = report["differences"] + (report.get("replication") or {}).get("differences", [])
        first = differences[0]["message"] if differences else "the bytes differ"
        print(_one_line(f"differs: published {report['published_sha256']}, recomputed {report['recomputed_sha256']}; "
                        f"{len(differences)} difference(s), first: {first} (--json lists all)"))
    return 0 if report["match"] else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m probekit", description="Target models and local probe runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="list the target models")
    models.add_argument("--json", action="store_true")
    crop = sub.add_parser("crop", help="crop one image with a target model")
    crop.add_argument("image")
    crop.add_argument("--model")
    crop.add_argument("--ratio", type=float, action="append", help="height/width; repeat to replace the defaults")
    crop.add_argument("--overlay", help="write an overlay PNG here")
    crop.add_argument("--json", action="store_true")
    run = sub.add_parser("run", help="run a probe locally (not sandboxed) and validate its image set")
    run.add_argument("probe")
    run.add_argument("--out")
    run.add_argument("--measure", action="store_true")
    run.add_argument("--model")
    verify = sub.add_parser("verify", help="re-measure a finding's reproducibility bundle; exit 0 only on a match")
    verify.add_argument("bundle", help="the bundle.zip of a published finding")
    verify.add_argument("--json", action="store_true")
    check = sub.add_parser("check", help="validate an image set as the platform does, listing every problem")
    check.add_argument("directory", help="the directory holding manifest.json and the images")
    args = parser.parse_args(argv)
    commands = {"models": _cmd_models, "crop": _cmd_crop, "run": _cmd_run, "verify": _cmd_verify, "check": _cmd_check}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
