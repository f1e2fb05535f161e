"""Simulated observations for checking the metrics document's inference (the tests and the bench).

Each image gets a latent "salience" drawn independently per image; under the exchangeable null
every group draws from one distribution, and an engineered effect shifts one group. A pair is
laid out four ways like the platform's `pairs` composition; its layouts mostly agree (the
winner is the more salient image, with a little per-layout noise), the salient point sometimes
falls on the padding, and exactly one region is kept at ratios 1.0, 1.14 and 2.0, so the
observations look like the model's and go through the production statistics unchanged.
"""
from __future__ import annotations

import numpy as np

from probekit.measurement._document import build_tests, power_warnings
from probekit.measurement._multiplicity import apply_holm

RATIOS = ["0.56", "1.0", "1.14", "2.0"]
LAYOUTS = (("h", "ab"), ("h", "ba"), ("v", "ab"), ("v", "ba"))
LAYOUT_NOISE = 0.3  # per-layout noise against the images' own difference (sd 1.4): layouts rarely disagree
OUTSIDE_RATE = 0.08  # share of layouts whose salient point lands on padding or background
BOX = [0, 0, 10, 10]


def _region(group: str, *, holds: bool, kept: dict, mass: float, slot: int | None) -> dict:
    return {"group": group, "box": BOX, "holds_point": holds, "kept": kept, "mass": mass, "slot": slot}


def pair_observations(rng, stem: str, first: tuple[str, str, float], second: tuple[str, str, float], *,
                      outside_rate: float = OUTSIDE_RATE) -> list[dict]:
    """The four layouts of one pair as observations; `first`/`second` are (group, image id, salience)."""
    (group_a, image_a, s_a), (group_b, image_b, s_b) = first, second
    observations = []
    for orientation, order in LAYOUTS:
        outside = rng.random() < outside_rate
        a_wins = s_a - s_b + LAYOUT_NOISE * rng.normal() > 0
        # the crop follows the point; on padding it lands on one side or the other at random
        a_kept = a_wins if not outside else rng.random() < 0.5
        kept_a = {r: 1.0 if (a_kept or (r == "0.56" and orientation == "h")) else 0.2 for r in RATIOS}
        kept_b = {r: 1.0 if (not a_kept or (r == "0.56" and orientation == "h")) else 0.2 for r in RATIOS}
        slot_a = 0 if order == "ab" else 1
        regions = [
            _region(group_a, holds=a_wins and not outside, kept=kept_a, mass=float(0.5 + 0.1 * s_a), slot=slot_a),
            _region(group_b, holds=not a_wins and not outside, kept=kept_b, mass=float(0.5 + 0.1 * s_b),
                    slot=1 - slot_a),
        ]
        parts = [image_a, image_b] if order == "ab" else [image_b, image_a]
        observations.append({
            "id": f"{stem}-{orientation}-{order}", "composite": True, "orientation": orientation,
            "first_group": group_a if order == "ab" else group_b, "parts": parts, "base": None, "pair": stem,
            "point": [0, 0], "crops": {}, "width": 20, "height": 10,
            "regions": sorted(regions, key=lambda r: r["slot"]),
        })
    return observations


def _single(rng, group: str, image: str, base: str, salience: float) -> dict:
    share = float(np.clip(0.6 + 0.3 * salience + 0.1 * rng.normal(), 0.0, 1.0))
    kept = {r: round(share if r != "0.56" else 1.0, 2) for r in RATIOS}  # rounding makes ties and zeros
    return {"id": image, "composite": False, "orientation": None, "first_group": None, "parts": None, "base": base,
            "pair": None, "point": [0, 0], "crops": {}, "width": 10, "height": 10,
            "regions": [_region(group, holds=True, kept=kept, mass=float(0.5 + 0.1 * salience), slot=None)]}


def simulate_set(seed: int, *, groups=("a", "b"), n_per_group: int = 50, shift: dict | None = None,
                 pairs_per_image: int = 1) -> tuple[list[dict], list[dict]]:
    """(composite observations, single-image observations with `base`) of one simulated set.

    `shift` adds a constant to one group's salience (an engineered effect); the null has none.
    The singles are counterfactual tuples: base k holds image k of every group.
    """
    rng = np.random.default_rng(seed)
    shift = shift or {}
    salience = {g: rng.normal(size=n_per_group) + shift.get(g, 0.0) for g in groups}
    composites = []
    for i, group_a in enumerate(groups):
        for group_b in groups[i + 1:]:
            for round_ in range(pairs_per_image):
                order_a, order_b = rng.permutation(n_per_group), rng.permutation(n_per_group)
                for k, (ia, ib) in enumerate(zip(order_a, order_b)):
                    stem = f"pair-{group_a}-{group_b}-{round_}-{k:05d}"
                    composites += pair_observations(
                        rng, stem, (group_a, f"{group_a}-{ia}", salience[group_a][ia]),
                        (group_b, f"{group_b}-{ib}", salience[group_b][ib]))
    singles = [_single(rng, g, f"{g}-{k}", f"base-{k:03d}", salience[g][k]) for k in range(n_per_group) for g in groups]
    return composites, singles


def document_tests(composites, singles, *, groups, seed: int = 0) -> tuple[list[dict], dict, list[str]]:
    """(tests, Holm family, warnings) as the platform builds them from these observations."""
    tests, _units = build_tests(composites, groups=list(groups), ratios=RATIOS, variant=None, seed=seed,
                                base_observations=singles)
    family = apply_holm(tests)
    return tests, family, power_warnings(tests)


def simulated_tests(seed: int, **kwargs) -> list[dict]:
    """The tests the platform would publish for one simulated set: built, Holm-adjusted, warned."""
    composites, singles = simulate_set(seed, **kwargs)
    return document_tests(composites, singles, groups=kwargs.get("groups", ("a", "b")), seed=seed)[0]


def null_figures(seeds, *, alpha: float = 0.05, **kwargs) -> dict:
    """Family-wise false positives and preference-interval coverage over simulated exchangeable nulls."""
    documents = significant = covered = intervals = 0
    for seed in seeds:
        tests = simulated_tests(seed, **kwargs)
        documents += 1
        significant += any(t["p_holm"] is not None and t["p_holm"] < alpha for t in tests)
        for test in tests:
            if test["kind"] == "preference" and test["estimate"] is not None:
                intervals += 1
                covered += test["ci"][0] <= 0.5 <= test["ci"][1]
    return {"documents": documents, "familywise_false_positive_rate": significant / documents,
            "preference_intervals": intervals, "preference_coverage": covered / intervals}


def detection_rate(seeds, test_id: str, *, alpha: float = 0.05, **kwargs) -> float:
    """Share of simulated sets in which `test_id` is Holm-significant."""
    hits = 0
    for seed in seeds:
        test = next(t for t in simulated_tests(seed, **kwargs) if t["id"] == test_id)
        hits += test["p_holm"] < alpha
    return hits / len(seeds)


def _random_subject(rng, size: int):
    """A grey square with a random number of dots: how busy a subject is varies the same way in every group."""
    from PIL import Image, ImageDraw

    subject = Image.new("RGB", (size, size), (128, 128, 128))
    draw = ImageDraw.Draw(subject)
    for _ in range(rng.randint(3, 40)):
        x, y, r = rng.randrange(size), rng.randrange(size), rng.randint(2, 7)
        shade = rng.choice([0, 255])
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(shade, shade, shade))
    return subject


def exchangeable_singles(out, *, seed: int, groups=("a", "b"), n_per_group: int = 25, size: int = 64,
                         pairs_per_image: int | None = None):
    """A real `pairs` image set whose groups are independent draws from one distribution of subjects."""
    import random

    from PIL import Image

    from probekit.writer import ImageSetWriter

    rng = random.Random(seed)
    with ImageSetWriter(out, title="Exchangeable null", attribute="none", groups=list(groups), compose="pairs",
                        pairs_per_image=pairs_per_image) as writer:
        for group in groups:
            for k in range(n_per_group):
                canvas = Image.new("RGB", (size + 16, size + 16), (128, 128, 128))
                canvas.paste(_random_subject(rng, size), (8, 8))
                writer.add(canvas, id=f"{group}-{k:03d}", regions=[(group, (8, 8, size, size))])
    return out


def pooled_composites(out, *, seed: int, groups=("a", "b"), pool: int = 6, n_images: int = 40, size: int = 64,
                      first_left: bool = False):
    """A real probe-built set: every image holds one subject of each group side by side, the subjects drawn
    from a pool of `pool` per group (the same pixels in several images), in random order or, with
    `first_left`, always in the listed order (a position confound)."""
    import random

    from PIL import Image

    from probekit.writer import ImageSetWriter

    rng = random.Random(seed)
    subjects = {g: [_random_subject(rng, size) for _ in range(pool)] for g in groups}
    pad = 8
    with ImageSetWriter(out, title="Pooled subjects", attribute="none", groups=list(groups)) as writer:
        for k in range(n_images):
            canvas = Image.new("RGB", (len(groups) * (size + pad) + pad, size + 2 * pad), (128, 128, 128))
            order = list(range(len(groups)))
            if not first_left:
                rng.shuffle(order)
            regions = []
            for g, group in enumerate(groups):
                x = pad + order[g] * (size + pad)
                canvas.paste(rng.choice(subjects[group]), (x, pad))
                regions.append((group, (x, pad, size, size)))
            writer.add(canvas, id=f"img-{k:03d}", regions=regions)
    return out


IMAGE_W, IMAGE_H, SLOT_W = 300, 100, 80


def probe_built_set(seed: int, *, n_images: int = 40, groups=("a", "b"), pool: int | None = None,
                    first_left: bool = False, right_bonus: float = 0.0) -> list[dict]:
    """Probe-built images (no platform pairing), each holding one region of every group side by side.

    `pool`: subjects drawn from a pool of that many per group (the same pixels in several images);
    else a fresh subject per image. `first_left`: the groups always in the listed order from left
    to right (a position confound) instead of a random order. `right_bonus` adds salience to
    whatever sits right of the centre (a cluttered right half): a position effect, no group effect.
    """
    rng = np.random.default_rng(seed)
    pools = {g: rng.normal(size=pool) for g in groups} if pool else None
    slots = [int(x) for x in np.linspace(10, IMAGE_W - SLOT_W - 10, len(groups))]
    observations = []
    for k in range(n_images):
        order = list(range(len(groups))) if first_left else list(rng.permutation(len(groups)))
        regions, scores = [], []
        for g, group in enumerate(groups):
            if pools is not None:
                subject = int(rng.integers(pool))
                salience, content = pools[group][subject], f"{group}-{subject}"
            else:
                salience, content = rng.normal(), f"{group}-img{k}"
            x = slots[order[g]]
            scores.append(salience + (right_bonus if x + SLOT_W / 2 > IMAGE_W / 2 else 0.0) + LAYOUT_NOISE * rng.normal())
            regions.append({"group": group, "box": [x, 10, SLOT_W, SLOT_W], "content": content, "slot": None})
        outside = rng.random() < OUTSIDE_RATE
        winner = int(np.argmax(scores))
        for g, region in enumerate(regions):
            region["holds_point"] = g == winner and not outside
            region["kept"] = {r: 1.0 if (g == winner or r == "0.56") else 0.2 for r in RATIOS}
            region["mass"] = 0.5
        observations.append({"id": f"img-{k:04d}", "composite": False, "orientation": None, "first_group": None,
                             "parts": None, "base": None, "pair": None, "point": [0, 0], "crops": {},
                             "width": IMAGE_W, "height": IMAGE_H, "regions": regions})
    return observations


def probe_built_figures(seeds, *, alpha: float = 0.05, primary: str | None = None, **kwargs) -> dict:
    """Over simulated probe-built sets: documents with a Holm-significant group test, naming a confound,
    significant without naming one; preference coverage of parity; p-values of exactly 0."""
    from probekit.measurement._confounds import find_confounds, mark_confounded

    documents = significant = confounded = unexplained = covered = intervals = zeros = 0
    for seed in seeds:
        observations = probe_built_set(seed, **kwargs)
        groups = list(kwargs.get("groups", ("a", "b")))
        tests, _units = build_tests(observations, groups=groups, ratios=RATIOS, variant=None, seed=seed)
        confounds = find_confounds(observations, groups)
        mark_confounded(tests, confounds)
        apply_holm(tests, primary=primary)
        documents += 1
        hit = [t for t in tests if not t["kind"].startswith("position") and t["p_holm"] is not None
               and t["p_holm"] < alpha]
        significant += bool(hit)
        confounded += any(c["factor"] == "x" for c in confounds)
        unexplained += any(not t.get("confounded_with") for t in hit)
        zeros += sum(t["p_value"] == 0 for t in tests)
        for test in tests:
            if test["kind"] == "preference" and test["estimate"] is not None:
                intervals += 1
                covered += test["ci"][0] <= 0.5 <= test["ci"][1]
    return {"documents": documents, "significant": significant, "confounded_on_x": confounded,
            "significant_without_confound": unexplained, "preference_intervals": intervals,
            "preference_coverage": covered / max(intervals, 1), "zero_p_values": zeros}


def primary_power(seeds, *, win: float = 0.65, n_pairs: int = 50, primary: str | None = "preference:a>b",
                  alpha: float = 0.05) -> float:
    """Share of simulated pairs sets, each pair won by group a with probability `win`, in which the
    preference test is significant: pre-registered as the primary, or in the Holm family when `primary` is None."""
    from scipy import stats

    shift = float(stats.norm.ppf(win)) * float(np.sqrt(2.0 + LAYOUT_NOISE**2))
    hits = 0
    for seed in seeds:
        composites, singles = simulate_set(seed, shift={"a": shift}, n_per_group=n_pairs)
        tests, _units = build_tests(composites, groups=["a", "b"], ratios=RATIOS, variant=None, seed=seed,
                                    base_observations=singles)
        apply_holm(tests, primary=primary)
        hits += next(t for t in tests if t["id"] == "preference:a>b")["p_holm"] < alpha
    return hits / len(seeds)


def pooled_single_images(seed: int, *, pool: int = 6, n_per_group: int = 40) -> list[dict]:
    """Single-subject images (no pairs, no `base`) whose subjects come from a pool of `pool` per group: the
    same pixels in several images. Each subject has its own chance of being kept, the same in both groups."""
    rng = np.random.default_rng(seed)
    salience = {g: rng.normal(size=pool) for g in ("a", "b")}
    observations = []
    for k in range(n_per_group):
        for group in ("a", "b"):
            subject = int(rng.integers(pool))
            kept = rng.random() < 1.0 / (1.0 + np.exp(-2.0 * salience[group][subject]))
            region = _region(group, holds=True, kept={r: 1.0 if kept else 0.2 for r in RATIOS}, mass=0.5, slot=None)
            region["content"] = f"{group}-{subject}"
            observations.append({"id": f"{group}-{k:03d}", "composite": False, "orientation": None,
                                 "first_group": None, "parts": None, "base": None, "pair": None, "point": [0, 0],
                                 "crops": {}, "width": 10, "height": 10, "regions": [region]})
    return observations
