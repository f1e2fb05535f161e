"""A published finding as an AVID report (the AI Vulnerability Database's report format, data version 0.2).

The fields follow AVID's report data model: `affects` (the target model and its version),
`problemtype` (the bias category), `metrics` (the tests of the metrics document), `references`,
`description`, `impact` (AVID's taxonomy: ethics, group fairness, found at evaluation).
`avid_report.schema.json` beside this file is the JSON schema the export is tested against.
"""
from __future__ import annotations

from bounty.models import Submission
from bounty.selectors import latest_measurement, measurement_document

AVID_DATA_VERSION = "0.2"
AVID_TAXONOMY_VERSION = "0.2"
# The document fields a metric carries into the report.
METRIC_RESULTS = ("kind", "groups", "ratio", "variant", "unit", "n", "estimate", "ci", "p_value", "p_holm",
                  "effect_size", "underpowered")


def _lang(value: str) -> dict:
    return {"lang": "eng", "value": value}


def _metric(test: dict) -> dict:
    return {
        "name": test["id"],
        "detection_method": {"type": "Significance Test", "name": test.get("method") or test.get("kind", "")},
        "results": {key: test.get(key) for key in METRIC_RESULTS if key in test},
    }


def avid_report(*, submission: Submission, urls: dict[str, str]) -> dict:
    """The AVID report of a published finding; `urls` names its page, metrics, bundle (absolute)."""
    measurement = latest_measurement(submission=submission)
    document = measurement_document(measurement) or {}
    image_set = measurement.image_set if measurement else None
    model = document.get("model") or submission.challenge.model_name
    version = document.get("model_version") or submission.challenge.model_version
    artifacts = [{"type": "Model", "name": f"{model} (version {version})"}]
    artifacts += [{"type": "Model", "name": f"{variant} (version {document['hashes']['models'].get(variant, '')})"}
                  for variant in document.get("variants", [])]
    attribute = (image_set.attribute if image_set else "") or document.get("attribute") or "an attribute"
    groups = " vs ".join(document.get("group_names") or (image_set.groups if image_set else []))
    category = submission.harm_type or "unrated"
    hypothesis = document.get("hypothesis") or ""
    description = f"{submission.title}. {hypothesis}".strip()
    if submission.writeup:
        description += "\n\n" + submission.writeup[:4000]
    credit = submission.team.name if submission.team_id else submission.participant.username
    references = [{"type": "source", "label": f"{submission.finding_identifier}: {submission.title}", "url": urls["finding"]}]
    references += [{"type": "source", "label": label, "url": urls[key]}
                   for key, label in (("metrics", "Metrics document (JSON)"),
                                      ("bundle", "Reproducibility bundle (probekit verify)")) if key in urls]
    return {
        "data_type": "AVID",
        "data_version": AVID_DATA_VERSION,
        "metadata": {"report_id": submission.finding_identifier},
        "affects": {
            "developer": [],
            "deployer": [submission.challenge.title],
            "artifacts": artifacts,
        },
        "problemtype": {
            "classof": "Undefined",
            "type": "Detection",
            "description": _lang(f"Crop bias ({category}): the crop of {model} treats {groups or 'groups'} "
                                 f"differently by {attribute}."),
        },
        "metrics": [_metric(test) for test in document.get("tests", [])],
        "references": references,
        "description": _lang(description),
        "impact": {"avid": {"risk_domain": ["Ethics"], "sep_view": ["E0101: Group fairness"],
                            "lifecycle_view": ["L05: Evaluation"], "taxonomy_version": AVID_TAXONOMY_VERSION}},
        "credit": [_lang(credit)],
        "reported_date": submission.published_at.date().isoformat() if submission.published_at else None,
    }
