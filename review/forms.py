"""Typed input of the judge console; the rules themselves are checked in review.services."""
from __future__ import annotations

from django import forms

from bounty import states
from bounty.forms import MAX_JUSTIFICATION_CHARS
from grading.rubric import Rubric, factor_parts, level_choices

# Judges' free text is capped like participants' (docs/security.md).
MAX_COMMENT_CHARS = 5000


class ReviewForm(forms.Form):
    """One select per rated part and one justification per factor, built from the rubric."""

    harm_type = forms.ChoiceField()
    comment = forms.CharField(required=False, max_length=MAX_COMMENT_CHARS, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, rubric: Rubric, **kwargs):
        super().__init__(*args, **kwargs)
        self.rubric = rubric
        self.fields["harm_type"].choices = [(h["id"], f"{h['label']} ({h['base']:g})") for h in rubric.data["harms"]]
        for factor in rubric.data["factors"]:
            for part in factor_parts(factor):
                self.fields[f"rate_{part['id']}"] = forms.ChoiceField(
                    required=False, label=part["label"],
                    choices=level_choices(part),
                )
            self.fields[f"why_{factor['id']}"] = forms.CharField(required=False, max_length=MAX_JUSTIFICATION_CHARS,
                                                                 label=f"Why ({factor['label'].lower()})")

    def ratings(self) -> dict[str, str]:
        return {name[5:]: value for name, value in self.cleaned_data.items() if name.startswith("rate_") and value}

    def justifications(self) -> dict[str, str]:
        return {name[4:]: value for name, value in self.cleaned_data.items() if name.startswith("why_") and value}


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[(d, d) for d in states.DECISIONS])
    reason = forms.CharField(required=False, max_length=2000)
    duplicate_of = forms.IntegerField(required=False, min_value=1)


class ReasonForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000)


class CommentForm(forms.Form):
    body = forms.CharField(required=False, max_length=MAX_COMMENT_CHARS)
    to_participant = forms.BooleanField(required=False)


class QueueFilterForm(forms.Form):
    challenge = forms.CharField(required=False)
    state = forms.CharField(required=False)
    mine = forms.BooleanField(required=False)
    disagreement = forms.BooleanField(required=False)
