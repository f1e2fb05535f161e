"""`{% finding_model_verdicts submission as verdicts %}`: the newest model reports' verdicts on a finding."""
from django import template

from grading.reports import finding_verdicts

register = template.Library()


@register.simple_tag
def finding_model_verdicts(submission):
    return finding_verdicts(submission=submission)
