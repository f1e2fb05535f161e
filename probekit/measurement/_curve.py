"""The compression curve: each base test's estimate across the variants, ordered by compression (docs/statistics.md).

"Does this finding grow as the model shrinks?" at a glance: one row per base test, one point per
model, from the base (compression 1) to the most compressed variant.
"""
from __future__ import annotations

from pathlib import Path

from probekit.measurement._legend import place_legend

MAX_PLOTTED_TESTS = 8  # more lines than this are unreadable; the document carries them all


def compression_order(names, compression: dict) -> list[str]:
    """Variants from least to most compressed; those without a known compression last, by name."""
    return sorted(names, key=lambda n: (compression.get(n) is None, compression.get(n) or 0.0, n))


def compression_curve(tests: list[dict], *, model: str, variants, compression: dict) -> dict:
    """`{base test id: [{"model", "compression", "estimate", "ci", "amplification"}...]}`.

    The first point is the base model (compression 1), then each variant that has the test, in
    `compression_order`; `amplification` is the id of the variant's amplification test (None for the base).
    Empty when no variant was measured.
    """
    if not variants:
        return {}
    by_id = {t["id"]: t for t in tests}
    order = compression_order([v for v in variants if v != model], compression)
    curve = {}
    for test in tests:
        if test["variant"] is not None or test["kind"] == "amplification":
            continue
        points = [{"model": model, "compression": 1.0, "estimate": test["estimate"], "ci": test["ci"],
                   "amplification": None}]
        for name in order:
            twin = by_id.get(f"{test['id']}#{name}")
            if twin is not None:
                points.append({"model": name, "compression": compression.get(name), "estimate": twin["estimate"],
                               "ci": twin["ci"], "amplification": f"amplification:{test['id']}#{name}"})
        curve[test["id"]] = points
    return curve


def _changes(points: list[dict]) -> float:
    estimates = [p["estimate"] for p in points if p["estimate"] is not None]
    return max(estimates) - min(estimates) if estimates else 0.0


def render_compression_curve(document: dict, out_dir: Path, plt) -> list[Path]:
    """compression_curve.png: the base tests that move most, estimate and interval per model."""
    curve = document.get("compression_curve") or {}
    rows = sorted(curve.items(), key=lambda item: -_changes(item[1]))[:MAX_PLOTTED_TESTS]
    if not rows or max(len(points) for _tid, points in rows) < 2:
        return []
    longest = max((points for _tid, points in rows), key=len)
    labels = [p["model"] for p in longest]
    fig, ax = plt.subplots(figsize=(7.5, 4), dpi=110, layout="constrained")
    for offset, (test_id, points) in enumerate(rows):
        shown = [p for p in points if p["model"] in labels and p["estimate"] is not None]
        xs = [labels.index(p["model"]) + (offset - len(rows) / 2) * 0.04 for p in shown]
        ys = [p["estimate"] for p in shown]
        # An interval need not be centred on its estimate: never a negative bar.
        lows = [max(0.0, p["estimate"] - p["ci"][0]) if p["ci"] and p["ci"][0] is not None else 0 for p in shown]
        highs = [max(0.0, p["ci"][1] - p["estimate"]) if p["ci"] and p["ci"][1] is not None else 0 for p in shown]
        ax.errorbar(xs, ys, yerr=[lows, highs], fmt="-o", capsize=3, lw=1, ms=4, label=test_id[:48])
    ax.set_xticks(range(len(labels)), [f"{p['model']}\n×{p['compression']:.3g}" if p["compression"] else p["model"]
                                       for p in longest], fontsize=7)
    ax.set_ylabel("estimate (95% CI)")
    ax.set_title("Does the finding grow as the model shrinks? (left: base, right: most compressed)")
    place_legend(fig, ax, fontsize=6)
    path = out_dir / "compression_curve.png"
    fig.savefig(path)
    plt.close(fig)
    return [path]
