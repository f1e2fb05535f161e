"""Forms parse what a user typed; the rules (quota, probe checks) live in services."""
from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from bounty.models import Team
from grading.rubric import factor_parts, level_choices

MAX_WRITEUP_CHARS = 20_000
# Self-ratings are named apart from the free-text fields (a rubric part may be called `justification`).
RATING_PREFIX = "self_rate_"


def rubric_self_assessment_fields(rubric) -> list[tuple[str, forms.Field]]:
    """One optional choice per rubric factor part: the participant's own rating (shown, never trusted)."""
    fields = []
    for factor in rubric.data["factors"]:
        for part in factor_parts(factor):
            label = factor["label"] if part["label"] == factor["label"] else f"{factor['label']}: {part['label']}"
            fields.append((f"{RATING_PREFIX}{part['id']}",
                           forms.ChoiceField(choices=level_choices(part), required=False, label=label)))
    return fields


class SubmissionForm(forms.Form):
    title = forms.CharField(max_length=200)
    probe = forms.FileField(help_text="A .py file, or a .zip with probe.py at its root.")
    writeup = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), required=False, max_length=MAX_WRITEUP_CHARS,
        help_text="Markdown: your hypothesis, method and why it matters.",
    )
    harm_type = forms.ChoiceField(choices=(), label="Harm (self-assessment)")
    self_justification = forms.CharField(
        max_length=1000, required=False, label="Why this harm (self-assessment)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="Myself",
                                  label="Submit as", help_text="A team's members share one quota.")

    def __init__(self, *args, harm_choices=(), rubric=None, teams=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["harm_type"].choices = list(harm_choices)
        self.fields["team"].queryset = teams if teams is not None else Team.objects.none()
        if teams is None or not teams.exists():
            del self.fields["team"]
        self.rating_fields = []
        if rubric is not None:
            for name, field in rubric_self_assessment_fields(rubric):
                self.fields[name] = field
                self.rating_fields.append(name)

    def clean_writeup(self) -> str:
        # Stray NULs and lone surrogates cannot be stored in PostgreSQL text; say so instead of a 500.
        text = self.cleaned_data["writeup"]
        if "\x00" in text:
            raise forms.ValidationError("The writeup contains a NUL character; paste it as plain text.")
        return text

    def self_assessment(self) -> dict:
        data = self.cleaned_data
        ratings = {name[len(RATING_PREFIX):]: data[name] for name in self.rating_fields if data.get(name)}
        return {"harm_type": data["harm_type"], "justification": data.get("self_justification", ""), "ratings": ratings}

    def bound_rating_fields(self):
        return [self[name] for name in self.rating_fields]

    def bound_main_fields(self):
        return [self[name] for name in self.fields if name not in self.rating_fields]


class SignupForm(UserCreationForm):
    email = forms.EmailField(help_text="We send a confirmation link there.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100)


class TeamMemberForm(forms.Form):
    username = forms.CharField(max_length=150, label="Add a member (username)")
