"""The organizer's forms in the admin: typed fields over the challenge's JSON settings, and its phases.

The challenge keeps its settings as JSON (model_variants, aspect_ratios, compose_options,
limits: what the pipeline reads); the form shows one typed field each and writes the same JSON,
checked by the code that will use it (probekit's compose options, sandbox.limits.Limits).
"""
from __future__ import annotations

import dataclasses
import math
import re

from django import forms

from bounty.errors import BountyError
from bounty.models import Challenge, default_ratios
from bounty.phases import check_phase_dates
from bounty.services import check_challenge_model, check_challenge_transition
from probekit.measurement._compose import DEFAULT_OPTIONS, SCALINGS, compose_options
from probekit.models import list_models, model_names
from sandbox import limits as sandbox_limits
from sandbox.limits import DEFAULT_LIMITS, Limits

BAD_RATIO = "{value!r} is not a number: give ratios (height / width) as numbers separated by commas, e.g. 0.56, 1.0, 2.0."
RATIO_NOT_POSITIVE = "Every ratio must be greater than 0 ({value} is not)."
LIMIT_NOT_POSITIVE = "A limit must be more than 0 ({value} is not); leave it empty for the default."
BAD_COLOUR = "Give the background as a hex colour, #rrggbb (e.g. #ffffff for white)."
COMPOSE_PREFIX = "compose_"
LIMIT_PREFIX = "limit_"
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in list(rgb)[:3])


def variant_choices(stored=()) -> list[tuple[str, str]]:
    """Every `model@variant` probekit offers (built-in and registered models), and any the challenge has."""
    offered = [variant for row in list_models() for variant in row["variants"]]
    return [(value, value) for value in offered + [v for v in stored if v not in offered]]


def _limit_help() -> dict[str, str]:
    """What each limit caps, from the table in sandbox.limits (one description for the docs and the form)."""
    described = {}
    for line in (sandbox_limits.__doc__ or "").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3:
            for name in re.findall(r"`(\w+)`", cells[0]):
                described[name] = cells[2]
    return described


def _positive(value) -> None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise forms.ValidationError(LIMIT_NOT_POSITIVE.format(value=value))


def _settings_fields() -> dict[str, forms.Field]:
    """One typed field per compose option and per sandbox limit (declared, so the admin renders them)."""
    fields = {
        f"{COMPOSE_PREFIX}background": forms.CharField(
            required=False, label="Compose: background",
            help_text=f"colour behind the pairs the platform composes, #rrggbb; empty: {_hex(DEFAULT_OPTIONS['background'])}"),
        f"{COMPOSE_PREFIX}padding": forms.IntegerField(
            required=False, min_value=0, label="Compose: padding",
            help_text=f"pixels between the two images of a pair; empty: {DEFAULT_OPTIONS['padding']}"),
        f"{COMPOSE_PREFIX}scaling": forms.ChoiceField(
            required=False, choices=[("", f"default ({DEFAULT_OPTIONS['scaling']})"), *((s, s) for s in SCALINGS)],
            label="Compose: scaling", help_text="how the two images of a pair are sized before they are joined"),
        f"{COMPOSE_PREFIX}size": forms.IntegerField(
            required=False, min_value=1, label="Compose: size",
            help_text=f"the common height in pixels with fixed_height scaling; empty: {DEFAULT_OPTIONS['size']}"),
    }
    described = _limit_help()
    for field in dataclasses.fields(Limits):
        default = getattr(DEFAULT_LIMITS, field.name)
        help_text = f"{described.get(field.name, field.name)}; empty: the default, {default}"
        if field.type in (float, "float"):
            fields[f"{LIMIT_PREFIX}{field.name}"] = forms.FloatField(
                required=False, validators=[_positive], label=f"Limit: {field.name}", help_text=help_text)
        else:
            fields[f"{LIMIT_PREFIX}{field.name}"] = forms.IntegerField(
                required=False, min_value=1, label=f"Limit: {field.name}", help_text=help_text)
    return fields


# A plain form holding the generated fields: the ModelForm below inherits them as declared fields.
_SettingsFields = type("_SettingsFields", (forms.Form,), _settings_fields())


class ChallengeAdminForm(forms.ModelForm, _SettingsFields):
    """The challenge in the admin: the state machine's check, the target model (built-in or
    registered; frozen when the challenge opens), and typed settings instead of JSON."""

    model_name = forms.ChoiceField(choices=lambda: [(name, name) for name in model_names()])

    model_variants = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="variants of the target measured beside it (the generalization columns of the metrics document)")
    aspect_ratios = forms.CharField(
        required=False, help_text="crop ratios (height / width) separated by commas, each > 0; empty: 0.56, 1.0, 1.14, 2.0")

    class Meta:
        model = Challenge
        exclude = ("compose_options", "limits")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        self.fields["model_variants"].choices = variant_choices(instance.model_variants or ())
        if not self.is_bound:
            self.initial["aspect_ratios"] = ", ".join(str(r) for r in instance.aspect_ratios or [])
            for key, value in (instance.compose_options or {}).items():
                self.initial[f"{COMPOSE_PREFIX}{key}"] = _hex(value) if key == "background" else value
            for key, value in (instance.limits or {}).items():
                self.initial[f"{LIMIT_PREFIX}{key}"] = value

    def clean_state(self):
        state = self.cleaned_data["state"]
        if self.instance.pk:
            try:
                check_challenge_transition(from_state=self.instance.state, to_state=state)
            except BountyError as exc:
                raise forms.ValidationError(exc.message) from None
        return state

    def clean_aspect_ratios(self) -> list[float]:
        ratios = []
        for part in (p.strip() for p in self.cleaned_data["aspect_ratios"].split(",")):
            if not part:
                continue
            try:
                ratio = float(part)
            except ValueError:
                raise forms.ValidationError(BAD_RATIO.format(value=part)) from None
            if not math.isfinite(ratio) or ratio <= 0:
                raise forms.ValidationError(RATIO_NOT_POSITIVE.format(value=part))
            ratios.append(ratio)
        return ratios or default_ratios()

    def clean_compose_background(self):
        value = self.cleaned_data[f"{COMPOSE_PREFIX}background"].strip()
        if not value:
            return None
        match = _HEX.match(value)
        if match is None:
            raise forms.ValidationError(BAD_COLOUR)
        digits = match.group(1)
        return [int(digits[i:i + 2], 16) for i in (0, 2, 4)]

    def clean(self):
        cleaned = super().clean()
        options = {key: cleaned[f"{COMPOSE_PREFIX}{key}"] for key in DEFAULT_OPTIONS
                   if cleaned.get(f"{COMPOSE_PREFIX}{key}") not in (None, "")}
        try:
            compose_options(options)  # the measurement's own check of what it will be given
        except (ValueError, TypeError) as exc:
            self.add_error(None, f"Compose options: {exc}")
        overrides = {field.name: cleaned[f"{LIMIT_PREFIX}{field.name}"] for field in dataclasses.fields(Limits)
                     if cleaned.get(f"{LIMIT_PREFIX}{field.name}") is not None}
        try:
            Limits.from_dict(overrides)
        except (ValueError, TypeError) as exc:
            self.add_error(None, f"Limits: {exc}")
        try:  # opening freezes the target's version and weights hash (ChallengeAdmin.save_model applies it)
            self.frozen_model = check_challenge_model(
                challenge=self.instance, model_name=cleaned.get("model_name", ""),
                variants=cleaned.get("model_variants") or [], state=cleaned.get("state", ""))
        except BountyError as exc:
            self.add_error(exc.field, exc.message)
        # Written to the instance here: the JSON fields are not form fields, so the ModelForm would skip them.
        self.instance.compose_options = options
        self.instance.limits = overrides
        return cleaned


class PhaseFormSet(forms.BaseInlineFormSet):
    """A challenge's phases, checked together: each ends after it starts and none overlap."""

    def clean(self):
        super().clean()
        kept = [form for form in self.forms
                if form.is_valid() and form.cleaned_data and not form.cleaned_data.get("DELETE")]
        dates = [(f.cleaned_data.get("name", ""), f.cleaned_data.get("starts_at"), f.cleaned_data.get("ends_at"))
                 for f in kept]
        for index, field, message in check_phase_dates(dates):
            kept[index].add_error(field, message)
