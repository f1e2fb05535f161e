from django import forms

HARM_CHOICES = [
    ("under-representation", "Under-representation"),
    ("denigration", "Denigration"),
    ("stereotyping", "Stereotyping"),
    ("ex-nomination", "Ex-nomination"),
    ("mis-recognition", "Mis-recognition"),
    ("erasure", "Erasure"),
    ("economic-harm", "Economic harm"),
]


class SubmissionForm(forms.Form):
    title = forms.CharField(max_length=200)
    probe = forms.FileField(help_text="A .py file, or a .zip with probe.py at its root.")
    writeup = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), required=False, help_text="Markdown")
    harm_type = forms.ChoiceField(choices=HARM_CHOICES, label="Harm (self-assessment)")
    self_justification = forms.CharField(
        max_length=1000, required=False, label="Why this harm (self-assessment)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
