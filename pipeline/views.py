"""The organizer's workers page: is anything stuck without anyone noticing?"""
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bounty.selectors import user_is_organizer
from pipeline.health import worker_health as health_of_workers


@never_cache
@login_required
@require_GET
def worker_health(request):
    """Never waits for the workers: their last answer is served with its age, refreshed in the background (pipeline.health)."""
    if not user_is_organizer(user=request.user):
        raise Http404("No such page.")
    health = health_of_workers()
    if request.GET.get("format") == "json":
        return JsonResponse(health)
    return render(request, "bounty/worker_health.html", {"health": health})
