"""The organizer's forms in the admin: typed fields over the challenge's JSON settings, and its phases."""
from __future__ import annotations

from django import forms

from bounty.phases import check_phase_dates


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
