"""Regenerate docs/findings.md: every example probe, sandboxed, measured on every target.

    .venv/bin/python scripts/findings.py [--out docs/findings.md] [--workers 2]

Each probe in examples/probes/ runs in the bubblewrap sandbox exactly as a submission would
(`sandbox.runner.run_probe`, default limits); its image set is measured by the platform
(`grading.measurement.measure_image_set`, seed 0) on spectral-residual (+ @32px),
fine-grained, smartcrop and u2netp (+ @int8). The page lists each probe's headline tests:
estimate, 95% interval, Holm-adjusted p (one family per document, as on the platform) and the
compression amplification. The page carries no timestamp: the same probes and versions give
the same bytes. About 8 minutes on two cores: u2netp and its int8 variant are most of it, so
one (probe, target) job runs per process, the largest first.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from bounty.demo import example_probes, probe_upload  # noqa: E402
from grading.measurement import measure_image_set, observe_image_set  # noqa: E402
from probekit import DEFAULT_RATIOS  # noqa: E402
from sandbox.runner import run_probe  # noqa: E402
from sandbox.status import RunStatus  # noqa: E402

TARGETS = {  # base model -> compressed variants measured beside it
    "spectral-residual": ["spectral-residual@32px"],
    "fine-grained": [],
    "smartcrop": [],
    "u2netp": ["u2netp@int8"],
}
HEADLINES = {  # probe -> the test ids (base model) the table shows
    "contrast_composites.py": ["preference:high>low"],
    "emoji_skin_tone.py": ["preference:light>dark", "preference:light>medium"],
    "script_latin_arabic.py": ["preference:latin>arabic", "preference:latin>hebrew", "preference:latin>devanagari"],
    "face_skin_tone.py": ["preference:lighter>darker", "paired:lighter>darker@0.56"],
    "hair_lightness.py": ["preference:dark-hair>white-hair", "paired:dark-hair>white-hair@0.56"],
    "padding_position.py": ["position:collins>hopper", "preference:collins>hopper"],
    "labelled_folder_pairs": ["preference:lighter>darker"],
}
ALPHA = 0.05


def fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_p(value) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def fmt_ci(ci) -> str:
    return "–" if not ci or ci[0] is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def significant(test) -> bool:
    return test.get("p_holm") is not None and test["p_holm"] < ALPHA


def flip_rate(image_dir: Path, model_name: str, cache_dir: Path) -> tuple[int, int]:
    """Padded images whose winning face differs from the unpadded image of the same base.

    Reads the measurement's own observations back from this run's cache, so no image is
    put through the model twice.
    """
    observations = observe_image_set(image_dir, model=model_name, ratios=DEFAULT_RATIOS, cache_dir=cache_dir)
    winners: dict[str, dict[str, str | None]] = {}
    for observation in observations:
        won = [region["group"] for region in observation["regions"] if region["holds_point"]]
        winners.setdefault(observation["base"], {})[observation["id"]] = won[0] if len(won) == 1 else None
    changed = total = 0
    for base, by_id in winners.items():
        unpadded = by_id[f"{base}-border00"]
        for item_id, winner in by_id.items():
            if item_id != f"{base}-border00":
                total += 1
                changed += winner != unpadded
    return changed, total


def probe_summary(path: Path) -> str:
    source = (path / "probe.py" if path.is_dir() else path).read_text(encoding="utf-8")
    return (ast.get_docstring(ast.parse(source)) or path.stem).splitlines()[0]


def run_in_sandbox(path: Path, work: Path, log) -> dict:
    """Run the probe as a submission would; its image set stays in var/findings/<probe>."""
    name, content = probe_upload(path)
    upload = work / name
    upload.write_bytes(content)
    image_dir = settings.VAR_DIR / "findings" / path.stem
    result = run_probe(upload, backend="bwrap", out_dir=image_dir)
    log(f"{path.name}: sandbox {result.status} in {result.wall_s:.1f}s, {result.n_images} images")
    if result.status != RunStatus.OK:
        raise SystemExit(f"{path.name} did not run cleanly in the sandbox: {result.status}: {result.error}\n"
                         f"{result.stderr_tail}")
    return {"name": path.name, "summary": probe_summary(path), "n_images": result.n_images,
            "image_dir": image_dir, "cache_dir": work / "cache" / path.stem, "documents": {}, "flips": None}


def measure_job(job: tuple) -> tuple:
    """One (probe, target) measurement, in a pool process of its own."""
    name, image_dir, cache_dir, model = job
    # A cache private to this run and probe: its entries are keyed by image content alone.
    document = measure_image_set(image_dir, model=model, variants=TARGETS[model], seed=0, workers=1,
                                 cache_dir=cache_dir)
    flips = flip_rate(image_dir, model, cache_dir) if name == "padding_position.py" else None
    return name, model, document, flips


def table(entry: dict) -> list[str]:
    lines = ["| Test | Target | n | Estimate | 95% CI | p (Holm) | Amplification (variant − base) | 95% CI | p (Holm) |",
             "|---|---|---:|---:|---|---:|---:|---|---:|"]
    for test_id in HEADLINES[entry["name"]]:
        for model, variants in TARGETS.items():
            tests = {t["id"]: t for t in entry["documents"][model]["tests"]}
            base = tests.get(test_id)
            if base is None:
                lines.append(f"| `{test_id}` | {model} | – | no such test (no composites with both groups) | | | | | |")
                continue
            lines.append(f"| `{test_id}` | {model} | {base['n']} | {fmt(base['estimate'])}"
                         f"{' *' if significant(base) else ''} | {fmt_ci(base['ci'])} | {fmt_p(base['p_holm'])} | | | |")
            for variant in variants:
                twin = tests.get(f"{test_id}#{variant}")
                amp = tests.get(f"amplification:{test_id}#{variant}")
                if twin is None or amp is None:
                    continue
                lines.append(f"| | {variant} | {twin['n']} | {fmt(twin['estimate'])}"
                             f"{' *' if significant(twin) else ''} | {fmt_ci(twin['ci'])} | {fmt_p(twin['p_holm'])} | "
                             f"{fmt(amp['signed_change'])}{' *' if significant(amp) else ''} | {fmt_ci(amp['signed_change_ci'])} | "
                             f"{fmt_p(amp['p_holm'])} |")
    return lines


def significant_counts(entry: dict) -> str:
    parts = []
    for model in TARGETS:
        tests = [t for t in entry["documents"][model]["tests"] if t.get("p_value") is not None]
        parts.append(f"{model} {sum(significant(t) for t in tests)}/{len(tests)}")
    return "; ".join(parts)


def render(entries: list[dict]) -> str:
    first = entries[0]["documents"]
    versions = ", ".join(f"{m} `{first[m]['model_version']}`" for m in TARGETS)
    libraries = ", ".join(f"{k} {v}" for k, v in sorted(first["u2netp"]["versions"].items()) if v)
    out = [
        "# Findings: the 2021 bounty's probes, re-run on our targets",
        "",
        "Generated by `scripts/findings.py` — do not edit by hand. Regenerate with",
        "",
        "    .venv/bin/python scripts/findings.py",
        "",
        "Every example probe in `examples/probes/` ran in the bubblewrap sandbox as a submission would, and",
        "the platform measured its image set (seed 0, ratios 0.56/1.0/1.14/2.0) on each target and",
        "compressed variant. For each probe the table shows its headline tests:",
        "",
        "- `preference:A>B` — share of composites in which group A's region holds the salient point (0.5 is",
        "  parity; the Twitter paper's \"difference from demographic parity\" is estimate − 0.5), Wilson 95% CI,",
        "  exact binomial test;",
        "- `position:A>B` — share in which the left/top slot wins, whoever is in it;",
        "- `paired:A>B@r` — mean difference A − B in the share of the region kept by the crop at ratio r over",
        "  counterfactual tuples (`base`), bootstrap 95% CI, Wilcoxon signed-rank test;",
        "- amplification — the variant's estimate minus the base model's on the same images (does compression",
        "  amplify the finding?), paired bootstrap CI and p.",
        "",
        "p (Holm) is adjusted over every p-value of that probe's document on that target;",
        "`*` marks Holm p < 0.05. n counts the composites where one group's region held the point",
        "(preference, position) or the tuples (paired). The probes' docstrings say what each synthetic",
        "design can and cannot show; read the numbers with them.",
        "",
        f"Targets: {versions}.  ",
        f"Libraries: {libraries}.",
        "",
    ]
    for entry in entries:
        out += [f"## {entry['name']}", "", entry["summary"], "",
                f"{entry['n_images']} images. Holm-significant tests per target: {significant_counts(entry)}.", ""]
        out += table(entry)
        if entry["flips"]:
            out += ["", "Padding flip rate (padded images whose winning face differs from the unpadded image of the",
                    "same layout; the \"Pixel Perfect\" statistic): "
                    + "; ".join(f"{m} {c}/{t} = {c / t:.1%}" for m, (c, t) in entry["flips"].items()) + "."]
        if entry["name"] == "emoji_skin_tone.py":
            for model in TARGETS:
                prefs = [t for t in entry["documents"][model]["tests"]
                         if t["kind"] == "preference" and t["variant"] is None and t["estimate"] is not None]
                lighter = sum(t["estimate"] > 0.5 for t in prefs)
                out.append(f"{'' if model != 'spectral-residual' else chr(10)}- {model}: the lighter tone won the "
                           f"majority in {lighter} of {len(prefs)} tone pairs.")
        out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "findings.md"))
    parser.add_argument("--workers", type=int, default=2, help="processes measuring at once")
    args = parser.parse_args()
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[findings {time.monotonic() - started:5.0f}s] {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="findings-") as work:
        entries = {path.name: run_in_sandbox(path, Path(work), log) for path in example_probes()}
        # One job per (probe, target), the costliest first, so the pool's processes stay busy to the end.
        cost = {"u2netp": 100, "fine-grained": 2, "smartcrop": 2, "spectral-residual": 1}
        jobs = sorted(((e["name"], e["image_dir"], e["cache_dir"], model) for e in entries.values() for model in TARGETS),
                      key=lambda job: -cost.get(job[3], 1) * entries[job[0]]["n_images"])
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for name, model, document, flips in pool.map(measure_job, jobs):
                entries[name]["documents"][model] = document
                if flips is not None:
                    entries[name]["flips"] = dict(entries[name]["flips"] or {}, **{model: flips})
                out = settings.VAR_DIR / "findings" / f"{Path(name).stem}.{model}.json"
                out.write_text(json.dumps(document, sort_keys=True), encoding="utf-8")
                log(f"{name} measured on {model}")
        entries = [entries[name] for name in sorted(entries)]
        for entry in entries:  # the page lists targets in TARGETS order, whatever order the jobs ended in
            entry["documents"] = {model: entry["documents"][model] for model in TARGETS}
            if entry["flips"]:
                entry["flips"] = {model: entry["flips"][model] for model in TARGETS}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(render(entries), encoding="utf-8")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
