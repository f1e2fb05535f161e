"""From observations to the metrics document's tests.

The unit of every test is a cluster of observations that are not independent of each other:
the four layouts of one platform-built pair, the images of one `base` tuple, or else a single
image. Counts are summed per cluster, so the same cluster sums feed the point estimate, the
test, the interval and the cluster bootstrap that compares a variant with the base model on
the very same units. docs/statistics.md explains each test for a reviewer.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

from probekit import stats
from probekit.measure import KEPT_THRESHOLD

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
# the value of "no disparity" per kind; 0 for the rest
PARITY = {"preference": 0.5, "position": 0.5, "position_x": 0.5, "position_y": 0.5}
SHARE_KINDS = ("preference", "position", "position_x", "position_y")  # estimates in [0, 1]; the rest in [-1, 1]
SMALL_H, SMALL_DZ = 0.2, 0.2
FEW_SUBJECTS = 10  # fewer distinct subjects in a group than this: a finding about them, not about the group
MIN_COMPONENTS = 8  # independent groups of comparisons for the sign-flip test over them (p can reach 0.008)
SUBJECT_TEST = "permutation of group labels over the {subjects} distinct subjects, comparisons held fixed ({how})"


def test_id(kind: str, first: str, second: str, ratio: str | None = None, variant: str | None = None) -> str:
    """`<kind>:<first>><second>[@<ratio>][#<variant>]`."""
    text = f"{kind}:{first}>{second}"
    if ratio is not None:
        text += f"@{ratio}"
    if variant is not None:
        text += f"#{variant}"
    return text


def _group_pairs(groups: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(groups) for b in groups[i + 1:]]


def _cluster_of(obs: dict) -> tuple[str, str]:
    """(unit, key): the layouts of a platform pair, the images of a `base` tuple, or one image."""
    if obs.get("pair"):
        return "pair", obs["pair"]
    if obs.get("base"):
        return "base", obs["base"]
    return "image", obs["id"]


def _unit_name(units: set[str]) -> str:
    return "/".join(sorted(units)) if units else "image"


def _groups_in(obs: dict) -> set[str]:
    return {r["group"] for r in obs["regions"]}


def _head_to_head(observations, first, second, *, both: bool):
    """Observations that are evidence about `first` against `second`: holding no third group, or
    holding three or more groups, both of these among them (compared inside the image)."""
    wanted = {first, second}
    for obs in observations:
        groups = _groups_in(obs)
        if len(groups) >= 3 and wanted <= groups:
            yield obs
        elif (groups == wanted) if both else (groups and groups <= wanted):
            yield obs


def _subject(obs: dict, region: dict) -> str:
    """Who a region shows: the item a platform-built composite took it from, else its pixels' hash
    (identical region content in several probe-built images is one subject), else the region itself."""
    if obs.get("parts") and region.get("slot") is not None:
        return obs["parts"][region["slot"]]
    return region.get("content") or f"{obs['id']}/{region['box']}"


def _evidence_key(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
        digest.update(b"|")
    return digest.hexdigest()


def _first_slot(observation: dict, regions: list[dict]) -> dict:
    """The region in the left/top slot: recorded for composites the platform built, else by geometry."""
    if observation["composite"]:
        return next(r for r in regions if r["slot"] == 0)
    a, b = regions[0], regions[1]
    (ax, ay, aw, ah), (bx, by, bw, bh) = a["box"], b["box"]
    dx, dy = (bx + bw / 2) - (ax + aw / 2), (by + bh / 2) - (ay + ah / 2)
    if abs(dx) >= abs(dy):
        return a if dx >= 0 else b
    return a if dy >= 0 else b


def _outside(observations) -> dict:
    """Observations whose salient point lies in no region: padding, separator or background."""
    total = len(observations)
    count = sum(1 for obs in observations if not any(r["holds_point"] for r in obs["regions"]))
    return {"n": count, "of": total, "share": count / total if total else None}


def _image_labels(clusters: dict, first: str):
    """Per pair, the image of each group, when pairs reuse images (else None: the pairs are independent)."""
    labels_a, labels_b, seen = [], [], {}
    for facts in clusters.values():
        parts = facts["parts"]
        if parts is None:
            return None
        a, b = parts if facts["first_group"] == first else parts[::-1]
        labels_a.append(a)
        labels_b.append(b)
        for image in (a, b):
            seen[image] = seen.get(image, 0) + 1
    return (labels_a, labels_b) if any(count > 1 for count in seen.values()) else None


def _axis_winner(regions: list[dict], axis: int) -> dict | None:
    """Of two regions, the one further left (axis 0) or higher (axis 1); None when level on that axis."""
    a, b = regions
    delta = (b["box"][axis] + b["box"][axis + 2] / 2) - (a["box"][axis] + a["box"][axis + 2] / 2)
    return None if delta == 0 else (a if delta > 0 else b)


def _composite_clusters(observations, first, second):
    """Per cluster of composites holding both groups: wins of each group, of the left/top slot (platform
    pairs) or of the left and of the upper region (probe-built images), and the subjects it shows."""
    clusters: dict[str, dict] = {}
    units: set[str] = set()
    used = []
    for obs in _head_to_head(observations, first, second, both=True):
        unit, key = _cluster_of(obs)
        units.add(unit)
        used.append(obs)
        facts = clusters.setdefault(key, {"first": 0, "second": 0, "neither": 0, "both": 0, "slot": 0, "layouts": 0,
                                          "left": 0, "across_x": 0, "top": 0, "across_y": 0,
                                          "subjects": (set(), set())})
        regions = [r for r in obs["regions"] if r["group"] in (first, second)]
        for region in regions:
            facts["subjects"][region["group"] != first].add(_subject(obs, region))
        winners = {r["group"] for r in regions if r["holds_point"]}
        facts["layouts"] += 1
        if winners == {first}:
            facts["first"] += 1
        elif winners == {second}:
            facts["second"] += 1
        else:
            facts["both" if winners else "neither"] += 1  # overlapping regions can both hold the point
            continue
        pair = [next(r for r in regions if r["group"] == first), next(r for r in regions if r["group"] == second)]
        facts["slot"] += int(_first_slot(obs, pair)["holds_point"])
        for axis, wins, decided in ((0, "left", "across_x"), (1, "top", "across_y")):
            winner = _axis_winner(pair, axis)
            if winner is not None:
                facts[decided] += 1
                facts[wins] += int(winner["holds_point"])
    return clusters, _unit_name(units), used


def _reused_subjects(clusters: dict) -> tuple[list, list] | None:
    """Per cluster, the subjects of each group, when some subject sits in more than one cluster (else None)."""
    labels_a = [tuple(sorted(c["subjects"][0])) for c in clusters.values()]
    labels_b = [tuple(sorted(c["subjects"][1])) for c in clusters.values()]
    reused = len(set(labels_a)) < len(labels_a) or len(set(labels_b)) < len(labels_b)
    return (labels_a, labels_b) if reused else None


def _subject_inference(values, weights, scores, estimate, labels, *, low, high, seed):
    """(interval, p_value, method) with the subject as the unit: comparisons sharing a subject are dependent.

    Comparisons that share subjects form connected components, which are independent: with at least
    MIN_COMPONENTS of them, the exact sign-flip test over components; with fewer (every subject
    linked to every other, as `pairs_per_image` > 1 makes them), the permutation of group labels
    over subjects. The interval counts at most the fewer distinct subjects of the two groups."""
    labels_a, labels_b = labels
    components = stats.subject_components(labels_a, labels_b)
    subjects = len(set(labels_a)) + len(set(labels_b))
    if components.max() + 1 >= MIN_COMPONENTS:
        p_value, how = stats.sign_flip_test(np.bincount(components, weights=scores))
        method = (f"sign-flip permutation test over the {components.max() + 1} groups of comparisons that share "
                  f"subjects ({subjects} distinct subjects; {how})")
    else:
        p_value, how = stats.subject_permutation_test(values, weights, labels_a, labels_b, seed=seed)
        method = SUBJECT_TEST.format(subjects=subjects, how=how)
    # the ratio's linearized variance is that of the centred one: the interval's spread
    _estimate, variance = stats.cluster_ratio(values, weights, labels_a=labels_a, labels_b=labels_b)
    distinct = min(len(set(labels_a)), len(set(labels_b)))
    ci = stats.bounded_interval(estimate, variance, low=low, high=high, n_max=distinct)
    return ci, p_value, method


def _count_subjects(test: dict, labels, *, comparisons: int) -> None:
    """With the subject as the unit, `n` counts distinct subjects; the comparisons are counted beside."""
    first, second = test["groups"]
    counts = {first: len(set(labels[0])), second: len(set(labels[1]))}
    test.update(n=counts[first] + counts[second], n_comparisons=comparisons, subjects=counts,
                _power=(min(counts.values()), stats.required_n_two_proportions(SMALL_H), f"h = {SMALL_H}", True))


PROPORTION_KINDS = {  # kind: (wins, decided) per cluster, and the outcome names of the two sides
    "preference": ("first", None, ("first", "second")),
    "position": ("slot", None, ("first_slot", "second_slot")),
    "position_x": ("left", "across_x", ("left", "right")),
    "position_y": ("top", "across_y", ("top", "bottom")),
}


def _proportion_test(kind, first, second, variant, clusters, unit, used, *, seed):
    """A share of decided layouts against 1/2, with the cluster (pair, base or image) as the unit, or the
    subject when clusters share subjects and the test is about the groups."""
    wins_key, decided_key, names = PROPORTION_KINDS[kind]
    keys = list(clusters)
    decided = np.array([clusters[k][decided_key] if decided_key else clusters[k]["first"] + clusters[k]["second"]
                        for k in keys], dtype=float)
    wins = np.array([clusters[k][wins_key] for k in keys], dtype=float)
    outcomes = {names[0]: int(wins.sum()), names[1]: int(decided.sum() - wins.sum())}
    outcomes["neither"] = int(sum(clusters[k]["neither"] for k in keys))
    outcomes["both"] = int(sum(clusters[k]["both"] for k in keys))
    labels = _reused_subjects(clusters) if kind == "preference" else None
    estimate, ci = stats.cluster_proportion_interval(wins, decided)
    if labels and decided.sum() > 0:
        live = decided > 0
        labels = ([a for a, keep in zip(labels[0], live) if keep], [b for b, keep in zip(labels[1], live) if keep])
        ci, p_value, method = _subject_inference(wins[live] - decided[live] / 2, decided[live],
                                                 2.0 * wins[live] - decided[live], estimate, labels,
                                                 low=0.0, high=1.0, seed=seed)
        unit = "subject"
    else:
        p_value, how = stats.sign_flip_test(2.0 * wins - decided)
        method = f"sign-flip permutation test on wins minus losses per {unit} ({how})"
    n = int(np.count_nonzero(decided))
    tid = test_id(kind, first, second, variant=variant)
    test = {
        "id": tid, "kind": kind, "variant": variant, "ratio": None, "groups": [first, second], "unit": unit,
        "n": n, "n_neither": len(keys) - n, "n_layouts": int(sum(clusters[k]["layouts"] for k in keys)),
        "outcomes": outcomes, "outside_regions": _outside(used), "estimate": estimate, "ci": list(ci),
        "parity_gap": None if estimate is None else estimate - 0.5, "p_value": p_value, "method": method,
        "effect_size": None if estimate is None else stats.cohen_h(estimate, 0.5),
        "_power": (n, stats.required_n_proportion(SMALL_H), f"h = {SMALL_H}", False),
        "_evidence": [_evidence_key(kind, wins, decided)],
    }
    if labels:
        _count_subjects(test, labels, comparisons=n)
    sums = np.column_stack([wins, decided, np.zeros_like(wins), np.zeros_like(wins)])
    return test, (keys, sums)


def _base_units(observations, first, second, ratio):
    """Per `base` tuple: mean kept share and saliency mass of each group's regions."""
    tuples: dict[str, dict[str, list]] = {}
    for obs in _head_to_head(observations, first, second, both=False):
        if obs.get("base") is None:
            continue
        slot = tuples.setdefault(obs["base"], {first: [], second: []})
        for region in obs["regions"]:
            if region["group"] in slot:
                slot[region["group"]].append((region["kept"][ratio], region["mass"] or 0.0))
    rows = []
    for base in sorted(tuples):
        values = tuples[base]
        if values[first] and values[second]:
            kept = np.mean([v[0] for v in values[first]]) - np.mean([v[0] for v in values[second]])
            mass = np.mean([v[1] for v in values[first]]) - np.mean([v[1] for v in values[second]])
            rows.append((base, float(kept), float(mass)))
    return rows


def _dz_note(test_id_: str, differences: np.ndarray) -> str | None:
    if differences.size < 2:
        return f"{test_id_}: d_z is undefined with fewer than two bases (no standard deviation); effect_size is null."
    if np.all(differences == differences[0]) and differences[0] != 0:
        return (f"{test_id_}: every base has the same difference {differences[0]:.6g}, so the standard deviation "
                "is 0 and d_z is infinite; effect_size is null.")
    return None


def _mean_interval(differences: np.ndarray, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of the mean difference; when every base has the same difference the bootstrap
    has no spread, so the interval is Wilson's with each base worth one trial (never of zero width)."""
    lo, hi = stats.bootstrap_mean_interval(differences, seed=seed, n_resamples=BOOTSTRAP_RESAMPLES)
    if hi - lo > 0:
        return lo, hi
    return stats.bounded_interval(float(differences.mean()), 0.0, low=-1.0, high=1.0, n_max=differences.size)


def _paired_test(first, second, ratio, variant, rows, used, seed):
    kept = np.array([r[1] for r in rows])
    mass = np.array([r[2] for r in rows])
    lo, hi = _mean_interval(kept, seed)
    mass_lo, mass_hi = _mean_interval(mass, seed)
    tid = test_id("paired", first, second, ratio, variant)
    dz = stats.cohen_dz(kept)
    test = {
        "id": tid, "kind": "paired", "variant": variant, "ratio": ratio, "groups": [first, second], "unit": "base",
        "n": len(rows), "outside_regions": _outside(used), "estimate": float(kept.mean()), "ci": [lo, hi],
        "p_value": stats.wilcoxon_signed_rank(kept), "method": "Wilcoxon signed-rank test, exact with ties and zeros",
        "effect_size": dz if math.isfinite(dz) else None, "effect_size_note": _dz_note(tid, kept),
        "mass_difference": float(mass.mean()), "mass_ci": [mass_lo, mass_hi],
        "mass_p_value": stats.wilcoxon_signed_rank(mass),
        "_power": (len(rows), stats.required_n_paired(SMALL_DZ), f"d_z = {SMALL_DZ}", False),
        "_evidence": [_evidence_key("paired", kept), _evidence_key("mass", mass)],
    }
    ones = np.ones_like(kept)
    return test, ([r[0] for r in rows], np.column_stack([kept, ones, np.zeros_like(kept), np.zeros_like(kept)]))


def _single_subjects(observations) -> dict[str, str]:
    """Image id → its one subject, for single-subject images (no pair, no base), when some subject is shown in
    several of them (then every such image is counted by its subject); else empty."""
    subjects = {obs["id"]: _subject(obs, obs["regions"][0]) for obs in observations
                if len(obs["regions"]) == 1 and _cluster_of(obs)[0] == "image"}
    counts: dict[str, int] = {}
    for subject in subjects.values():
        counts[subject] = counts.get(subject, 0) + 1
    return subjects if any(count > 1 for count in counts.values()) else {}


def _rate_clusters(observations, first, second, ratio):
    """Per cluster: kept count and region count of each group (kept = at least half inside the crop)."""
    clusters: dict[str, list[int]] = {}
    facts: dict[str, dict] = {}
    units, used = set(), []
    crops = {"first_only": 0, "second_only": 0, "both": 0, "neither": 0}
    shown = _single_subjects(_head_to_head(observations, first, second, both=False))
    for obs in _head_to_head(observations, first, second, both=False):
        unit, key = _cluster_of(obs)
        if unit == "image" and shown.get(obs["id"]):
            unit, key = "subject", "subject:" + shown[obs["id"]]  # the same subject in several single images
        units.add(unit)
        used.append(obs)
        counts = clusters.setdefault(key, [0, 0, 0, 0])
        subjects = facts.setdefault(key, {"subjects": (set(), set())})["subjects"]
        kept_here = {first: False, second: False}
        for region in obs["regions"]:
            if region["group"] not in kept_here:
                continue  # a third group in the image: this test compares two
            kept = region["kept"][ratio] >= KEPT_THRESHOLD
            slot = 0 if region["group"] == first else 2
            counts[slot] += kept
            counts[slot + 1] += 1
            kept_here[region["group"]] |= kept
            subjects[slot // 2].add(_subject(obs, region))
        if {first, second} <= _groups_in(obs):
            crops[{(True, False): "first_only", (False, True): "second_only", (True, True): "both",
                   (False, False): "neither"}[(kept_here[first], kept_here[second])]] += 1
    keys = list(clusters)
    rows = np.array([clusters[k] for k in keys], dtype=float).reshape(-1, 4)
    paired = bool(len(keys)) and bool(np.all(rows[:, 1] > 0) and np.all(rows[:, 3] > 0))
    labels = _reused_subjects(facts) if paired else None
    return keys, rows, _unit_name(units), used, crops, labels


def _rate_test(first, second, ratio, variant, keys, rows, unit, used, crops, labels, *, seed):
    x1, n1, x2, n2 = (rows[:, i] for i in range(4))
    r1, r2 = x1.sum() / n1.sum(), x2.sum() / n2.sum()
    paired = bool(np.all(n1 > 0) and np.all(n2 > 0))
    power = (len(keys), stats.required_n_proportion(SMALL_H), f"h = {SMALL_H}", False)
    if labels:
        # both groups in every cluster, clusters sharing subjects: the subject is the unit
        difference, _ci, _p = stats.cluster_rate_difference(x1, n1, x2, n2)
        ci, p_value, method = _subject_inference(x1 - x2 * n1 / n2, n1, x1 / n1 - x2 / n2, difference, labels,
                                                 low=-1.0, high=1.0, seed=seed)
    elif paired:
        # both groups sit in every cluster (one composite keeps one region or the other): a paired test
        p_value, how = stats.sign_flip_test(x1 / n1 - x2 / n2)
        difference, ci, _p = stats.cluster_rate_difference(x1, n1, x2, n2)
        method = f"sign-flip permutation test on the within-{unit} difference of kept shares ({how})"
    elif np.all(n1 + n2 == 1):
        k1, m1, k2, m2 = int(x1.sum()), int(n1.sum()), int(x2.sum()), int(n2.sum())
        difference, ci = stats.rate_difference(k1, m1, k2, m2), stats.newcombe_interval(k1, m1, k2, m2)
        p_value = stats.two_proportion_test(k1, m1, k2, m2)
        method = "two-proportion z test on independent images, Newcombe interval"
        power = (min(m1, m2), stats.required_n_two_proportions(SMALL_H), f"h = {SMALL_H}", True)
    else:
        difference, ci, p_value = stats.cluster_rate_difference(x1, n1, x2, n2)
        method = f"cluster-robust t test of the rate difference, clustered by {unit}"
        groups_n = (int(np.count_nonzero(n1)), int(np.count_nonzero(n2)))
        power = (min(groups_n), stats.required_n_two_proportions(SMALL_H), f"h = {SMALL_H}", True)
    tid = test_id("group_rate", first, second, ratio, variant)
    test = {
        "id": tid, "kind": "group_rate", "variant": variant, "ratio": ratio, "groups": [first, second],
        "unit": unit, "n": len(keys), "n_by_group": {first: int(n1.sum()), second: int(n2.sum())},
        "clusters_by_group": {first: int(np.count_nonzero(n1)), second: int(np.count_nonzero(n2))},
        "rates": {first: float(r1), second: float(r2)}, "estimate": float(difference),
        "rate_ratio": float(r1 / r2) if r2 > 0 else None, "ci": list(ci), "p_value": p_value, "method": method,
        "effect_size": stats.cohen_h(float(r1), float(r2)), "outside_regions": _outside(used),
        "_power": power, "_evidence": [_evidence_key("group_rate", rows)],
    }
    if labels:
        test["unit"] = "subject"
        _count_subjects(test, labels, comparisons=len(keys))
    if paired:
        test["crops"] = crops
    return test, (keys, rows)


def _finished(test: dict) -> dict:
    """The interval inside the range its estimate can take ([0, 1] for shares, [-1, 1] for differences);
    a test with no units keeps no p-value, so it never enters the family, and says why."""
    low, high = (0.0, 1.0) if test["kind"] in SHARE_KINDS else (-1.0, 1.0)
    test["ci"] = [None if v is None else min(high, max(low, v)) for v in test["ci"]]
    test["_notes"] = []
    if test["n"] == 0:
        test["p_value"] = None
        test["_notes"].append(f"{test['id']} has no units (n = 0): in no {test['unit']} did exactly one of the two "
                              "groups hold the salient point, so it is reported without a test and stays out of the "
                              "family.")
    few = {g: k for g, k in test.get("subjects", {}).items() if k < FEW_SUBJECTS}
    if few and test["variant"] is None:
        names = " and ".join(f"{g} has {k}" for g, k in few.items())
        test["_notes"].append(f"{test['id']}: {names} distinct subject(s), reused across comparisons; with fewer "
                              f"than {FEW_SUBJECTS} per group the test speaks about these subjects, not about the "
                              "group: add distinct subjects rather than more pairs of the same ones.")
    return test


def _composite_tests(observations, first, second, variant, seed):
    clusters, unit, used = _composite_clusters(observations, first, second)
    if not clusters:
        return
    platform = all(obs["composite"] for obs in used)
    # a probe-built image has no slots: the left and the upper region are tested apart
    for kind in ("preference", "position") if platform else ("preference", "position_x", "position_y"):
        if kind == "position_y" and not any(c["across_y"] for c in clusters.values()):
            continue  # side by side in every image: nothing to say about top against bottom
        if kind == "position_x" and not any(c["across_x"] for c in clusters.values()):
            continue
        yield _proportion_test(kind, first, second, variant, clusters, unit, used, seed=seed)


def build_tests(observations, *, groups, ratios, variant, seed, base_observations=None):
    """All tests of one model variant; returns (tests, units) where units feed amplification.

    `base_observations` are the single images of a `pairs` set (its composites carry no `base`);
    by default the paired tests read `observations`. Every test of groups A and B reads only
    head-to-head evidence: observations holding no third group, or images holding three or more
    groups, compared inside the image.
    """
    base_observations = observations if base_observations is None else base_observations
    built = []
    for first, second in _group_pairs(groups):
        built += _composite_tests(observations, first, second, variant, seed)
        for ratio in ratios:
            rows = _base_units(base_observations, first, second, ratio)
            if rows:
                used = [o for o in _head_to_head(base_observations, first, second, both=False) if o.get("base")]
                built.append(_paired_test(first, second, ratio, variant, rows, used, seed))
            keys, rows, unit, used, crops, labels = _rate_clusters(observations, first, second, ratio)
            if len(keys) and rows[:, 1].sum() and rows[:, 3].sum():
                built.append(_rate_test(first, second, ratio, variant, keys, rows, unit, used, crops, labels, seed=seed))
    tests = [_finished(test) for test, _sums in built]
    return tests, {test["id"]: sums for test, sums in built}


def _estimate_from_sums(sums: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        first = sums[..., 0] / sums[..., 1]
        second = np.where(sums[..., 3] > 0, sums[..., 2] / np.where(sums[..., 3] > 0, sums[..., 3], 1), 0.0)
    return first - second


def amplification(base_test: dict, base_units, variant_test: dict, variant_units, *, seed: int) -> dict:
    """Does the variant move the base test's disparity away from parity? A cluster bootstrap says.

    Clusters (the test's units) are resampled together for both models, B = 2000. `estimate` is
    the change in |disparity| (|variant − parity| − |base − parity|: positive = further from
    parity) with its percentile interval; `signed_change` is variant − base with its own interval,
    and `p_value` tests the signed change, p = 2·min(P*(Δ ≤ 0), P*(Δ ≥ 0)) with the +1 correction
    (Davison & Hinkley 1997, §4.4).
    """
    base_keys, base_sums = base_units
    variant_keys, variant_sums = variant_units
    common = [k for k in base_keys if k in set(variant_keys)]
    where_base, where_variant = {k: i for i, k in enumerate(base_keys)}, {k: i for i, k in enumerate(variant_keys)}
    base_sums = base_sums[[where_base[k] for k in common]] if common else base_sums[:0]
    variant_sums = variant_sums[[where_variant[k] for k in common]] if common else variant_sums[:0]
    parity = PARITY.get(base_test["kind"], 0.0)
    n = len(common)
    signed = abs_change = None
    if variant_test["estimate"] is not None and base_test["estimate"] is not None:
        signed = variant_test["estimate"] - base_test["estimate"]
        abs_change = abs(variant_test["estimate"] - parity) - abs(base_test["estimate"] - parity)
    signed_ci, abs_ci, p_value = [None, None], [None, None], None
    if n >= 2 and signed is not None:
        rng = np.random.default_rng(seed)
        index = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
        variant_star = _estimate_from_sums(variant_sums[index].sum(axis=1))
        base_star = _estimate_from_sums(base_sums[index].sum(axis=1))
        keep = np.isfinite(variant_star) & np.isfinite(base_star)
        diffs = (variant_star - base_star)[keep]
        growth = (np.abs(variant_star - parity) - np.abs(base_star - parity))[keep]
        if len(diffs):
            signed_ci = [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))]
            abs_ci = [float(np.quantile(growth, 0.025)), float(np.quantile(growth, 0.975))]
            below = (np.count_nonzero(diffs <= 0) + 1) / (len(diffs) + 1)
            above = (np.count_nonzero(diffs >= 0) + 1) / (len(diffs) + 1)
            p_value = min(1.0, 2 * min(below, above))
    variant = variant_test["variant"]
    evidence = _evidence_key("amplification", base_test["_evidence"][0], variant_test["_evidence"][0])
    return {
        "id": f"amplification:{base_test['id']}#{variant}", "kind": "amplification", "of": base_test["id"],
        "variant": variant, "ratio": base_test["ratio"], "groups": base_test["groups"], "unit": base_test["unit"],
        "n": n, "base_estimate": base_test["estimate"], "variant_estimate": variant_test["estimate"],
        "parity": parity, "estimate": abs_change, "ci": abs_ci, "abs_disparity_change": abs_change,
        "abs_disparity_change_ci": abs_ci, "signed_change": signed, "signed_change_ci": signed_ci,
        "p_value": p_value, "method": f"cluster bootstrap by {base_test['unit']} of the signed change",
        "effect_size": None, "_evidence": [evidence],
    }


def power_warnings(tests: list[dict]) -> list[str]:
    """The notes of the tests, then one plain warning for each group of tests with too few units for
    80% power at a small effect: tests sharing the same count, unit and requirement share one line
    naming them all.

    Each count is in its test's own unit (pairs, subjects, bases, images). One-sample and paired
    tests count units; two-sample tests count the smaller group, against the per-group size a
    two-sample test needs. The order is the tests' order: the same tests give the same lines.
    """
    notes, short = [], {}
    for test in tests:
        for note in (test.get("effect_size_note"), *test.get("_notes", ())):
            if note and note not in notes:
                notes.append(note)
        if "_power" not in test:
            continue
        n, required, effect, per_group = test["_power"]
        test["underpowered"] = n < required
        if test["underpowered"]:
            short.setdefault((n, required, effect, test["unit"], per_group), []).append(test["id"])
    return notes + [stats.underpowered_warning(ids, n, required=required, effect=effect, unit=unit, per_group=per_group)
                    for (n, required, effect, unit, per_group), ids in short.items()]


def public(test: dict) -> dict:
    """The test as the document shows it: without the fields only the measurement uses."""
    return {k: v for k, v in test.items() if not k.startswith("_")}


def significant_direction(test: dict) -> int:
    """+1 / −1 when Holm-significant in that direction (against parity or zero), else 0."""
    if test.get("p_holm") is None or test["p_holm"] >= ALPHA or test["estimate"] is None:
        return 0
    centre = PARITY.get(test["kind"], 0.0)
    return int(np.sign(test["estimate"] - centre))
