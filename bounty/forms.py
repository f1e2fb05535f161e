"""Forms parse what a user typed; the rules (quota, probe checks) live in services."""
from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm
from django.core.validators import MaxLengthValidator

from bounty import limits
from bounty.models import Team
from grading.rubric import factor_parts, level_choices

# The caps of participant-typed text, checked at the door by these forms and the API's serializers
# (docs/security.md lists them); a longer value is refused with the field's name and the limit.
MAX_TITLE_CHARS = 200
MAX_WRITEUP_CHARS = 20_000
MAX_JUSTIFICATION_CHARS = 1000
MAX_TEAM_NAME_CHARS = 100
MAX_USERNAME_CHARS = 150
MAX_PASSWORD_CHARS = 256  # hashing is the costly step: no reason to hash a megabyte
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
    title = forms.CharField(max_length=MAX_TITLE_CHARS)
    probe = forms.FileField(help_text=(
        "A .py file, or a .zip with probe.py at its root. Pre-registration: if one test is what your hypothesis "
        "is about, name it in the manifest before you see any result (\"primary\": \"preference:lighter>darker\", "
        "or ImageSetWriter(primary=...)). It is tested first at the full alpha of 0.05; the other tests are "
        "corrected behind it and count only if it is significant. A primary your set cannot produce is refused "
        "with a message naming it."))
    writeup = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), required=False, max_length=MAX_WRITEUP_CHARS,
        help_text="Markdown: your hypothesis, method and why it matters.",
    )
    harm_type = forms.ChoiceField(choices=(), label="Harm (self-assessment)")
    self_justification = forms.CharField(
        max_length=MAX_JUSTIFICATION_CHARS, required=False, label="Why this harm (self-assessment)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="Myself",
                                  label="Submit as", help_text="Counts against your own quota either way.")

    def __init__(self, *args, harm_choices=(), rubric=None, teams=None, **kwargs):
        super().__init__(*args, **kwargs)
        # No harm is preselected: the participant names one (an untouched default would pass as a choice).
        self.fields["harm_type"].choices = [("", "— choose the harm —"), *harm_choices]
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


def _cap_passwords(form, *names: str) -> None:
    for name in names:
        form.fields[name].validators.append(MaxLengthValidator(MAX_PASSWORD_CHARS))


class SignupForm(UserCreationForm):
    email = forms.EmailField(help_text="We send a confirmation link there.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _cap_passwords(self, "password1", "password2")


class CappedAuthenticationForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _cap_passwords(self, "password")


class ThrottledPasswordResetForm(PasswordResetForm):
    """Django's reset form; past RATE_ACCOUNT_MAIL mails to one address it sends nothing, silently."""

    def save(self, *args, **kwargs):
        if limits.account_mail_allowed(self.cleaned_data["email"]):
            super().save(*args, **kwargs)


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=MAX_TEAM_NAME_CHARS)


class TeamMemberForm(forms.Form):
    username = forms.CharField(max_length=MAX_USERNAME_CHARS, label="Add a member (username)")
