"""Reads of the judge console: the queue, one submission's evidence, agreement, duplicate hints."""
from __future__ import annotations

import json

from django.db.models import Prefetch
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

import blobs
from bounty import states
from bounty.errors import NotFound
from bounty.models import Challenge, Submission
from bounty.permissions import identity_hidden, judge_challenges, may_judge_submission
from bounty.selectors import participant_label, rubric_of
from grading.models import MEASUREMENT_IN_FLIGHT, MeasurementStatus, Score
from grading.rubric import (
    Rubric,
    RubricError,
    aggregate_scores,
    factor_parts,
    krippendorff_alpha,
    measurement_evidence,
    provisional_ratings,
    score_finding,
    scores_disagree,
    significant_tests,
)
from grading.selectors import artifact_names, document_of, findings_checks, measurement_of_record, replication_status, replication_view
from grading.selectors import artifact_open as artifact_open_of
from pipeline.models import ProbeRun
from review.models import Review, ReviewAssignment
from sandbox.probe_files import ProbeFileError, zip_python_sources
from sandbox.status import RunStatus

QUEUE_LIMIT = 200
PROBE_SHOW_BYTES = 200_000


def check_is_judge(*, user) -> None:
    """404 for anyone who judges no challenge: the console does not exist for them."""
    if not judge_challenges(user=user).exists():
        raise NotFound("No such page.")


def submission_get_for_judge(*, submission_id: int, user) -> Submission:
    """A submission of a challenge the user judges (not their own); 404 otherwise."""
    submission = Submission.objects.select_related("challenge", "participant", "team", "duplicate_of").filter(
        pk=submission_id
    ).first()
    if submission is None or not may_judge_submission(user=user, submission=submission):
        raise NotFound("No such submission.")
    return submission


def review_summary(*, submission: Submission, rubric: Rubric, reviews=None) -> dict:
    """Counted scores, their aggregate by the rubric's method, and the disagreement flag."""
    reviews = list(submission.reviews.all() if reviews is None else reviews)
    scores = [r.score for r in reviews if r.score is not None and not r.conflict_of_interest]
    spec = rubric.aggregation
    return {
        "n": len(scores),
        "scores": scores,
        "conflicts": sum(1 for r in reviews if r.conflict_of_interest),
        "method": spec["method"],
        "aggregate": aggregate_scores(scores, method=spec["method"]),
        "threshold": spec["disagreement_threshold"],
        "disagreement": scores_disagree(scores, threshold=spec["disagreement_threshold"]),
        "spread": round(max(scores) - min(scores), 2) if scores else None,
    }


def judge_queue(*, user, challenge_slug: str = "", state: str = "", assigned_to_me: bool = False,
                disagreement_only: bool = False) -> list[dict]:
    """The submissions a judge may review, filtered; a fixed number of queries whatever the length."""
    qs = Submission.objects.filter(challenge__in=judge_challenges(user=user)).exclude(participant=user)
    if challenge_slug:
        qs = qs.filter(challenge__slug=challenge_slug)
    if state:
        qs = qs.filter(state=state)
    if assigned_to_me:
        qs = qs.filter(assignments__judge=user)
    qs = (
        qs.select_related("challenge", "participant", "team")
        .prefetch_related(
            Prefetch("reviews", queryset=Review.objects.only("id", "submission_id", "judge_id", "score", "conflict_of_interest")),
            Prefetch("assignments", queryset=ReviewAssignment.objects.select_related("judge")),
        )
        .order_by("state_changed_at", "pk")
    )
    rubrics: dict[int, Rubric] = {}
    rows = []
    for submission in qs[:QUEUE_LIMIT]:
        rubric = rubrics.setdefault(submission.challenge_id, rubric_of(submission.challenge))
        summary = review_summary(submission=submission, rubric=rubric, reviews=submission.reviews.all())
        if disagreement_only and not summary["disagreement"]:
            continue
        assignees = [a.judge for a in submission.assignments.all()]
        rows.append({
            "submission": submission,
            "participant": participant_label(submission=submission, rubric=rubric),
            "summary": summary,
            "assignees": [j.get_username() for j in assignees],
            "assigned_to_me": any(j.pk == user.pk for j in assignees),
            "reviewed_by_me": any(r.judge_id == user.pk for r in submission.reviews.all()),
        })
    return rows


def challenge_agreement(*, challenge: Challenge) -> dict:
    """Krippendorff's alpha of the judges' scores (interval) and of each factor's levels (ordinal)."""
    reviews = list(
        Review.objects.filter(submission__challenge=challenge, conflict_of_interest=False, score__isnull=False)
        .order_by("judge_id", "submission_id")
    )
    judges = sorted({r.judge_id for r in reviews})
    units = sorted({r.submission_id for r in reviews})
    by_cell = {(r.judge_id, r.submission_id): r for r in reviews}

    def matrix(value) -> list[list[float | None]]:
        return [[value(by_cell[(j, u)]) if (j, u) in by_cell else None for u in units] for j in judges]

    rubric = rubric_of(challenge)
    factors = {}
    for factor in rubric.data["factors"]:
        for part in factor_parts(factor):
            order = {level["id"]: index for index, level in enumerate(part["levels"])}
            factors[part["label"]] = krippendorff_alpha(
                matrix(lambda r, pid=part["id"], order=order: order.get(r.ratings.get(pid))), level="ordinal"
            )
    return {
        "n_judges": len(judges), "n_submissions": len(units),
        "score_alpha": krippendorff_alpha(matrix(lambda r: r.score), level="interval"),
        "factor_alpha": factors,
    }


def _directions(document: dict, alpha: float) -> dict[tuple[str, str], float]:
    """(favoured group, other group) → largest |effect size| among significant base-model tests."""
    found: dict[tuple[str, str], float] = {}
    for test in significant_tests(document, alpha):
        groups = test.get("groups") or []
        if test.get("variant") or len(groups) != 2 or str(test.get("kind", "")).startswith("position"):
            continue
        signed = test.get("parity_gap", test.get("estimate")) or 0
        direction = (groups[0], groups[1]) if signed >= 0 else (groups[1], groups[0])
        size = abs(test.get("effect_size") or 0.0)
        found[direction] = max(found.get(direction, 0.0), size)
    return found


def duplicate_candidates(*, submission: Submission, document: dict | None, limit: int = 5) -> list[dict]:
    """Earlier findings on the same attribute and direction, the closest effect size first."""
    if document is None:
        return []
    rubric = rubric_of(submission.challenge)
    alpha = rubric.data["measurement"]["alpha"]
    mine = _directions(document, alpha)
    measurement = measurement_of_record(submission=submission)
    attribute = (measurement.image_set.attribute if measurement else "").strip().lower()
    earlier = (
        Submission.objects.filter(challenge=submission.challenge, created_at__lt=submission.created_at)
        .exclude(pk=submission.pk)
        .exclude(state__in=(states.FAILED, states.CANCELLED, states.PLATFORM_ERROR, *states.ACTIVE_STATES))
        .select_related("participant")
        .prefetch_related("measurements__image_set")
        .order_by("-created_at")[:QUEUE_LIMIT]
    )
    hints = []
    for other in earlier:
        done = [m for m in other.measurements.all()
                if m.status == MeasurementStatus.DONE and m.document_json and m.rerun_of_id is None]
        if not done:
            continue
        theirs = _directions(document_of(done[0]), alpha)
        same_attribute = bool(attribute) and done[0].image_set.attribute.strip().lower() == attribute
        common = sorted(set(mine) & set(theirs))
        if not common and not same_attribute:
            continue
        distance = min((abs(mine[d] - theirs[d]) for d in common), default=None)
        hints.append({
            "submission": other, "same_attribute": same_attribute,
            "directions": [f"{a} over {b}" for a, b in common], "effect_distance": distance,
        })
    # Same direction first, then the closest effect size, then the first reporter.
    hints.sort(key=lambda h: (h["effect_distance"] is None, h["effect_distance"] or 0.0, h["submission"].created_at))
    return hints[:limit]


def variant_comparison(*, document: dict | None) -> dict:
    """Each test of the base model beside the same test on each compressed variant."""
    if not document:
        return {"variants": [], "rows": []}
    variants = sorted({t["variant"] for t in document.get("tests", []) if t.get("variant")})
    if not variants:
        return {"variants": [], "rows": []}
    table: dict[tuple, dict] = {}
    for test in document.get("tests", []):
        if test.get("kind") == "amplification":
            continue
        key = (test.get("kind"), tuple(test.get("groups") or []), test.get("ratio"))
        table.setdefault(key, {})[test.get("variant")] = test
    rows = []
    for (kind, groups, ratio), cells in table.items():
        if len(cells) < 2:
            continue
        rows.append({
            "kind": kind, "groups": " > ".join(groups), "ratio": ratio,
            "cells": [cells.get(v) for v in [None, *variants]],
        })
    return {"variants": variants, "rows": rows}


def probe_source(*, submission: Submission) -> dict:
    """The probe's Python files highlighted by Pygments (a .zip shows each .py inside); a zip that
    cannot be read shows an error line instead."""
    formatter = HtmlFormatter(linenos="inline", cssclass="highlight")
    try:
        with submission.probe.open("rb") as handle:
            content = handle.read()
    except (OSError, ValueError):
        return {"files": [], "css": "", "error": "The probe file is not available on this server."}
    if submission.probe.name.lower().endswith(".zip"):
        try:
            sources = zip_python_sources(content=content, max_bytes=PROBE_SHOW_BYTES)
        except ProbeFileError as exc:
            return {"files": [], "css": "", "error": f"The probe cannot be shown: {exc}"}
    else:
        sources = [(submission.probe_name, content[:PROBE_SHOW_BYTES])]
    files = [{"name": name, "html": highlight(data.decode("utf-8", "replace"), PythonLexer(), formatter),
              "truncated": len(data) >= PROBE_SHOW_BYTES} for name, data in sources]
    return {"files": files, "css": formatter.get_style_defs(".highlight"), "error": ""}


def manifest_summary(*, image_set) -> dict | None:
    """Title, hypothesis, attribute, groups and items per group of an image set's manifest."""
    if image_set is None:
        return None
    summary = {"title": image_set.title, "attribute": image_set.attribute, "groups": image_set.groups,
               "n_images": image_set.n_images, "hypothesis": "", "compose": "none", "per_group": {}, "n_bases": 0}
    try:
        manifest = json.loads(blobs.read_bytes(blobs.key_of(image_set.path, "manifest.json")) or b"{}")
    except (blobs.StorageUnavailable, ValueError):
        return summary
    per_group: dict[str, int] = {}
    for item in manifest.get("items", []):
        for region in item.get("regions", []):
            per_group[region.get("group", "?")] = per_group.get(region.get("group", "?"), 0) + 1
    summary.update(
        hypothesis=str(manifest.get("hypothesis", "")), compose=str(manifest.get("compose", "none")),
        per_group=per_group, n_bases=len({i.get("base") for i in manifest.get("items", []) if i.get("base")}),
    )
    return summary


def artifact_open(*, submission: Submission, measurement_id: int, filename: str):
    """The open file of one artifact of one of this submission's measurements; 404 for anything else."""
    measurement = submission.measurements.filter(pk=measurement_id).first()
    handle = artifact_open_of(measurement=measurement, filename=filename) if measurement else None
    if handle is None:
        raise NotFound("No such artifact.")
    return handle


def audit_trail(*, submission: Submission, rubric: Rubric) -> list[dict]:
    hidden = identity_hidden(submission=submission, rubric=rubric)
    rows = []
    for event in submission.events.select_related("actor"):
        if event.actor_id is None:
            who = "platform"
        elif hidden and event.actor_id == submission.participant_id:
            who = "participant"
        else:
            who = event.actor.get_username()
        rows.append({"at": event.at, "who": who, "from": event.from_state, "to": event.to_state, "reason": event.reason})
    return rows


def comments_for_judges(*, submission: Submission, rubric: Rubric) -> list[dict]:
    hidden = identity_hidden(submission=submission, rubric=rubric)
    rows = []
    for comment in submission.comments.select_related("author"):
        by_participant = comment.author_id == submission.participant_id
        who = "participant" if by_participant and hidden else comment.author.get_username()
        rows.append({"comment": comment, "who": who, "by_participant": by_participant})
    return rows


def rerun_comparison(*, measurement) -> dict | None:
    """The latest re-run of `measurement` beside it: per test, both estimates and Holm p-values.

    `status` is the re-run's stage (its probe run until a measurement exists). `identical` is the
    strong check: the same probe, images, model version and seed must give a byte-identical
    document, so the two document hashes match.
    """
    if measurement is None:
        return None
    rerun = measurement.reruns.filter(confirmatory_of__isnull=True).order_by("-created_at").first()
    queued = ProbeRun.objects.filter(submission_id=measurement.submission_id, details__rerun_of=measurement.pk,
                                     status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).exclude(
        details__has_key="replication").order_by("-queued_at").first()
    if queued is not None and (rerun is None or rerun.status == MeasurementStatus.DONE):
        # A newer re-run's probe is still running: the earlier comparison is no longer the latest.
        return {"rerun": None, "status": queued.status, "done": False, "in_flight": True, "rows": [], "identical": False}
    if rerun is None:
        return None
    if rerun.status != MeasurementStatus.DONE or measurement.status != MeasurementStatus.DONE:
        return {"rerun": rerun, "status": f"measurement {rerun.status}", "done": False,
                "in_flight": rerun.status in MEASUREMENT_IN_FLIGHT, "rows": [], "identical": False}
    first, second = document_of(measurement), document_of(rerun)
    again = {t["id"]: t for t in second.get("tests", [])}
    rows = []
    for test in first.get("tests", []):
        twin = again.get(test["id"], {})
        rows.append({"id": test["id"], "estimate": test.get("estimate"), "p_holm": test.get("p_holm"),
                     "rerun_estimate": twin.get("estimate"), "rerun_p_holm": twin.get("p_holm"),
                     "same": twin.get("estimate") == test.get("estimate") and twin.get("p_holm") == test.get("p_holm")})
    return {"rerun": rerun, "status": MeasurementStatus.DONE, "done": True, "in_flight": False, "rows": rows,
            "identical": measurement.document_sha256 == rerun.document_sha256}


def self_assessment_lines(*, rubric: Rubric, self_assessment: dict) -> dict:
    """The participant's self-assessment in words: the harm's label, each rated part as
    "Damage — Well-being: moderate (×1.2)", the justification. Unknown ids are shown as written."""
    data = self_assessment if isinstance(self_assessment, dict) else {}
    harm_id = str(data.get("harm_type") or "")
    harm = rubric.harms.get(harm_id)
    ratings = data.get("ratings") if isinstance(data.get("ratings"), dict) else {}
    parts = {}
    for factor in rubric.data["factors"]:
        for part in factor_parts(factor):
            name = factor["label"] if part["label"] == factor["label"] else f"{factor['label']} — {part['label']}"
            parts[part["id"]] = (name, {lv["id"]: lv for lv in part["levels"]})
    lines = []
    for part_id, level_id in ratings.items():
        name, levels = parts.get(str(part_id), (str(part_id), {}))
        level = levels.get(str(level_id))
        lines.append({"part": name, "level": level["label"] if level else str(level_id),
                      "value": f"{level['value']:g}" if level else None})
    known = {"harm_type", "ratings", "justification"}
    return {
        "harm": harm["label"] if harm else harm_id, "harm_base": f"{harm['base']:g}" if harm else None,
        "ratings": lines, "justification": str(data.get("justification") or ""),
        "other": [(str(k), str(v)) for k, v in data.items() if k not in known],
    }


def judge_page(*, submission: Submission, user) -> dict:
    """Everything the judge submission page shows, in one place."""
    rubric = rubric_of(submission.challenge)
    measurement = measurement_of_record(submission=submission)
    document = document_of(measurement)
    evidence = measurement_evidence(rubric, document or {})
    reviews = list(submission.reviews.select_related("judge"))
    mine = next((r for r in reviews if r.judge_id == user.pk), None)
    harm = submission.harm_type if submission.harm_type in rubric.harms else rubric.data["default_harm"]
    if mine and mine.ratings:
        initial = {"harm_type": mine.harm_type or harm, "ratings": mine.ratings, "justifications": mine.justifications,
                   "comment": mine.comment}
    else:
        initial = {"harm_type": harm, "ratings": provisional_ratings(rubric, harm_type=harm, evidence=evidence),
                   "justifications": {}, "comment": ""}
    provisional = Score.objects.filter(submission=submission, kind=Score.PROVISIONAL).first()
    run = submission.runs.exclude(details__has_key="rerun_of").order_by("-queued_at").first()
    return {
        "submission": submission,
        "rubric": rubric,
        "participant": participant_label(submission=submission, rubric=rubric),
        "identity_hidden": identity_hidden(submission=submission, rubric=rubric),
        "run": run,
        "measurement": measurement,
        "document": document,
        "evidence": evidence,
        "manifest": manifest_summary(image_set=measurement.image_set if measurement else None),
        "probe": probe_source(submission=submission),
        "variants": variant_comparison(document=document),
        "rerun": rerun_comparison(measurement=measurement),
        "replication": replication_view(**fresh_draw(submission=submission), document=document),
        "artifacts": artifact_names(measurement=measurement),
        "reviews": reviews,
        "my_review": mine,
        # Other judges' ratings are shown once this judge has rated, so nobody anchors on them.
        "show_others": bool(mine and (mine.score is not None or mine.conflict_of_interest)),
        "summary": review_summary(submission=submission, rubric=rubric, reviews=reviews),
        "initial": initial,
        "provisional": provisional,
        "duplicates": duplicate_candidates(submission=submission, document=document),
        "comments": comments_for_judges(submission=submission, rubric=rubric),
        "events": audit_trail(submission=submission, rubric=rubric),
        "assigned": [a.judge.get_username() for a in submission.assignments.select_related("judge")],
        "self_assessment": self_assessment_lines(rubric=rubric, self_assessment=submission.self_assessment or {}),
    }


def score_preview(*, submission: Submission, harm_type: str, ratings: dict[str, str]) -> dict:
    """The live score of the judge's rubric form, computed by the engine (the page shows only this).

    Same rule as a saved review: the submission's measurement of record gates the justification.
    """
    rubric = rubric_of(submission.challenge)
    if harm_type not in rubric.harms:
        harm_type = rubric.data["default_harm"]
    applicable = rubric.factors_for(rubric.harm(harm_type))
    missing = [part["label"] for factor in applicable for part in factor_parts(factor) if not ratings.get(part["id"])]
    preview = {"harm_type": harm_type, "applicable": [f["id"] for f in applicable], "score": None,
               "formula": "", "flags": [], "missing": missing}
    if missing:
        preview["formula"] = "rate: " + ", ".join(missing)
        return preview
    try:
        result = score_finding(rubric, harm_type=harm_type, ratings=ratings,
                               document=document_of(measurement_of_record(submission=submission)) or {},
                               replication=replication_status(submission=submission))
    except RubricError as exc:
        preview["formula"] = str(exc)
        return preview
    product = result.formula_short.split(" = ")[0]
    preview.update(score=f"{result.value:.2f}", formula=f"{result.formula}  ({product})",
                   flags=list(result.flags) + list(result.capped.values()))
    return preview


def fresh_draw(*, submission: Submission) -> dict:
    """replication_view's `data` and `robustness`, from the one row."""
    checks = findings_checks(submission=submission)
    return {"data": checks["replication"], "robustness": checks["robustness"]}
