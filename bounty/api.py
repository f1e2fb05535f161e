"""REST API at /api/: one view per operation, nested Input/Output serializers, token auth.

Business-rule errors (BountyError) and invalid input both answer 400 with one body:
`{"error": message, "code": stable code, "field": name or null, "extra": {...}}`. Objects a user may
not see are 404; a phase's leaderboard hidden from the viewer is 403 with the same body. Every other
error (404, 401, 403, 405, a body that does not parse) keeps DRF's `{"detail"}` and gains the same
`"error"` and `"code"` (DRF's own code: `not_found`, `not_authenticated`, `parse_error`…). The codes
are listed in the OpenAPI description (`API_DESCRIPTION`), from `bounty.errors.API_CODES`.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from bounty import errors, leaderboard, limits, selectors, services, states, uploads
from bounty.avid import avid_report
from bounty.errors import BountyError, NotFound
from bounty.forms import (
    MAX_JUSTIFICATION_CHARS,
    MAX_TITLE_CHARS,
    MAX_WRITEUP_CHARS,
    RATING_PREFIX,
    rubric_self_assessment_fields,
)
from bounty.parsers import SafeJSONParser
from bounty.permissions import is_own_submission
from bounty.views import finding_urls
from grading.rubric import rubric_for_challenge


def bounty_exception_handler(exc, context):
    """BountyError and validation errors → 400 `{"error", "field", "extra"}`, a limit → 429 with the
    same body and Retry-After; the rest as DRF does."""
    if isinstance(exc, limits.LimitReached):
        return Response({"error": exc.message, "code": errors.code_of(exc.message), "field": None,
                         "extra": {"retry_after": exc.retry_after}},
                        status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, NotFound):  # the domain's: nothing the viewer may see by that name
        exc = drf_exceptions.NotFound(exc.message)
    if isinstance(exc, BountyError):
        return Response({"error": exc.message, "code": exc.code, "field": exc.field, "extra": exc.extra},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) and exc.detail else {"non_field_errors": exc.detail}
        field, messages = next(iter(detail.items()))
        message = str(messages[0] if isinstance(messages, list) and messages else messages)
        return Response({"error": message, "code": errors.INPUT_INVALID,
                         "field": None if field == "non_field_errors" else field,
                         "extra": {"fields": detail}}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):  # as DRF's handler does, so the code is DRF's too
        exc = drf_exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied(*exc.args)
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict):
        codes = exc.get_codes() if isinstance(exc, drf_exceptions.APIException) else None
        response.data.setdefault("error", str(response.data.get("detail", "")))
        response.data["code"] = codes if isinstance(codes, str) else errors.INPUT_INVALID
    return response


API_DESCRIPTION = (
    "Challenges, submissions and measured crop disparities.\n\n"
    "Every error answers `{\"error\": message, \"code\": code, ...}`; `code` is stable, match it rather "
    "than the English message. Business-rule codes: " + ", ".join(f"`{code}`" for code in errors.API_CODES)
    + ". Besides them, DRF's own: `not_found`, `not_authenticated`, `authentication_failed`, "
    "`permission_denied`, `method_not_allowed`, `parse_error`, `unsupported_media_type`, `throttled`."
)


class BountyApiView(APIView):
    def get_exception_handler(self):
        return bounty_exception_handler


def _absolute(request, name: str, *args) -> str:
    return request.build_absolute_uri(reverse(name, args=args))


# --- challenges -------------------------------------------------------------------------------


class ChallengeListApi(BountyApiView):
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        slug = serializers.SlugField()
        title = serializers.CharField()
        summary = serializers.CharField()
        state = serializers.CharField()
        model_name = serializers.CharField()
        model_version = serializers.CharField()
        closes_at = serializers.DateTimeField(allow_null=True)
        n_published = serializers.IntegerField()

        class Meta:
            ref_name = "ChallengeListItem"

    @extend_schema(operation_id="challenges_list", responses=OutputSerializer(many=True))
    def get(self, request):
        return Response(self.OutputSerializer(selectors.challenge_list(), many=True).data)


class ChallengeDetailApi(BountyApiView):
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        slug = serializers.SlugField()
        title = serializers.CharField()
        summary = serializers.CharField()
        rules = serializers.CharField()
        state = serializers.CharField()
        model_name = serializers.CharField()
        model_version = serializers.CharField()
        model_variants = serializers.ListField(child=serializers.CharField())
        aspect_ratios = serializers.ListField(child=serializers.FloatField())
        rubric = serializers.SerializerMethodField()
        harm_types = serializers.SerializerMethodField()
        limits = serializers.SerializerMethodField()
        opens_at = serializers.DateTimeField(allow_null=True)
        closes_at = serializers.DateTimeField(allow_null=True)
        daily_limit = serializers.IntegerField()
        total_limit = serializers.IntegerField()

        class Meta:
            ref_name = "ChallengeDetail"

        def get_rubric(self, challenge) -> str:
            return rubric_for_challenge(challenge).key

        def get_harm_types(self, challenge) -> list[str]:
            return [harm for harm, _label in selectors.harm_choices(challenge=challenge)]

        def get_limits(self, challenge) -> dict:
            return selectors.challenge_limits(challenge=challenge).to_dict()

    @extend_schema(operation_id="challenges_retrieve", responses=OutputSerializer)
    def get(self, request, slug: str):
        return Response(self.OutputSerializer(selectors.challenge_get(slug=slug)).data)


# --- submissions ------------------------------------------------------------------------------


class RunSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    attempt = serializers.IntegerField()
    backend = serializers.CharField()
    exit_code = serializers.IntegerField(allow_null=True)
    wall_s = serializers.FloatField(allow_null=True)
    error = serializers.CharField()
    stdout_tail = serializers.CharField()
    stderr_tail = serializers.CharField()


class SubmissionStatusSerializer(serializers.Serializer):
    """The live state the pages poll, plus links; `metrics` is the metrics document once measured."""

    id = serializers.IntegerField()
    challenge = serializers.CharField()
    title = serializers.CharField()
    state = serializers.CharField()
    state_label = serializers.CharField()
    reason = serializers.CharField()
    state_changed_at = serializers.CharField()
    active = serializers.BooleanField()
    finished = serializers.BooleanField()
    queue_position = serializers.IntegerField(allow_null=True)
    eta_s = serializers.IntegerField(allow_null=True, help_text="while queued: seconds until it should start, "
                                     "from recent run+measure times (few yet: the model's measured speed × a "
                                     "typical set's size); null when nothing is known")
    elapsed_s = serializers.FloatField(allow_null=True)
    progress = serializers.DictField(child=serializers.IntegerField(), allow_null=True)
    progress_unit = serializers.CharField(allow_null=True, help_text="while measuring: what progress counts, "
                                          "\"images\" (one model run per image) or \"observations\"")
    measure_eta_s = serializers.IntegerField(allow_null=True, help_text="while measuring: seconds until the "
                                             "measurement should be done, from the model's measured speed")
    run = RunSerializer(allow_null=True)
    provisional_score = serializers.FloatField(allow_null=True)
    final_score = serializers.FloatField(allow_null=True)
    published_at = serializers.CharField(allow_null=True)
    metrics = serializers.JSONField(allow_null=True)
    replication = serializers.JSONField(allow_null=True, help_text=(
        '{"status": pending|replicated|not_replicated|same_draw|not_applicable|failed, "tests": [{"id", "estimate", '
        '"ci", "p_value", "p_holm", "same_direction"}], "document_sha256", "seed" (null until final), "reason"}: '
        "the finding measured again on a fresh secret draw of the probe"))
    robustness = serializers.JSONField(allow_null=True, help_text=(
        '{"status": pending|done|not_applicable|skipped|failed, "tests": {"<test id>": {"pad"|"mirror"|"jpeg"|"scale": '
        '{"estimate", "p_value", "same_direction"}, "verdict": "robust"|"fragile", "broken_by": [...]}}}'))
    images = serializers.DictField(child=serializers.URLField())
    url = serializers.URLField()
    finding_identifier = serializers.CharField(allow_null=True)
    embargo_until = serializers.CharField(allow_null=True)
    bundle_url = serializers.URLField(allow_null=True)
    avid_url = serializers.URLField(allow_null=True)


def _submission_payload(request, submission) -> dict:
    measurement = selectors.latest_measurement(submission=submission)
    payload = selectors.submission_status(submission=submission)
    payload["metrics"] = selectors.measurement_document(measurement)
    payload["images"] = {name: _absolute(request, "submission-artifact", submission.pk, name)
                         for name in selectors.artifact_names(measurement=measurement)}
    payload["url"] = _absolute(request, "submission-detail", submission.pk)
    published = submission.state == states.PUBLISHED
    urls = finding_urls(request, submission) if published else {}
    payload["finding_identifier"] = submission.finding_identifier
    payload["embargo_until"] = submission.embargo_until.isoformat() if submission.embargo_until and not published else None
    payload["bundle_url"], payload["avid_url"] = urls.get("bundle"), urls.get("avid")
    return payload


def _with_quota(response, *, challenge, user):
    """How many submissions the person has left now (a refusal carries the same in extra.quota)."""
    usage = services.quota_usage(challenge=challenge, participant=user)
    response["X-Quota-Left"] = str(usage["left"])
    response["X-Quota-Today"] = f"{usage['today']}/{usage['daily_limit']}"
    response["X-Quota-Total"] = f"{usage['total']}/{usage['total_limit']}"
    return response


class ChallengeSubmissionsApi(BountyApiView):
    """GET: your submissions to the challenge. POST (multipart): submit a probe."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=MAX_TITLE_CHARS)
        probe = serializers.FileField(help_text="A .py file, or a .zip with probe.py at its root.")
        writeup = serializers.CharField(required=False, allow_blank=True, max_length=MAX_WRITEUP_CHARS)
        harm_type = serializers.CharField(max_length=40, help_text="one of the challenge's harm_types")
        self_justification = serializers.CharField(required=False, allow_blank=True, max_length=MAX_JUSTIFICATION_CHARS)
        self_ratings = serializers.JSONField(required=False, help_text='{"<rubric part>": "<level>"}, shown to judges')
        team = serializers.IntegerField(required=False, allow_null=True, help_text="id of one of your teams")

        class Meta:
            ref_name = "SubmissionCreateInput"

        def validate_harm_type(self, value: str) -> str:
            allowed = [harm for harm, _label in selectors.harm_choices(challenge=self.context["challenge"])]
            if value not in allowed:
                raise serializers.ValidationError(f"Unknown harm type {value!r}; choose one of: {', '.join(allowed)}.")
            return value

        def validate_self_ratings(self, value):
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise serializers.ValidationError("Give self_ratings as a JSON object of strings.")
            # The form's choices are the rule: known rubric parts, each rated with one of its levels.
            fields = dict(rubric_self_assessment_fields(rubric_for_challenge(self.context["challenge"])))
            for part, level in value.items():
                field = fields.get(f"{RATING_PREFIX}{part}")
                if field is None:
                    raise serializers.ValidationError(f"Unknown rubric part {part[:60]!r} in self_ratings.")
                if level not in {choice for choice, _label in field.choices if choice}:
                    raise serializers.ValidationError(f"Unknown level {level[:60]!r} for {part!r} in self_ratings.")
            return value

        def validate_team(self, value):
            if value is None:
                return None
            team = selectors.team_list_for_user(user=self.context["user"]).filter(pk=value).first()
            if team is None:
                raise serializers.ValidationError("You are not a member of this team.")
            return team

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        title = serializers.CharField()
        state = serializers.CharField()
        created_at = serializers.DateTimeField()
        url = serializers.SerializerMethodField()

        class Meta:
            ref_name = "SubmissionListItem"

        def get_url(self, submission) -> str:
            return _absolute(self.context["request"], "api-submission-detail", submission.pk)

    @extend_schema(operation_id="challenge_submissions_list", responses=OutputSerializer(many=True))
    def get(self, request, slug: str):
        challenge = selectors.challenge_get(slug=slug)
        submissions = selectors.submission_list_for_participant(user=request.user, challenge=challenge)
        response = Response(self.OutputSerializer(submissions, many=True, context={"request": request}).data)
        return _with_quota(response, challenge=challenge, user=request.user)

    @extend_schema(operation_id="challenge_submissions_create", request={"multipart/form-data": InputSerializer},
                   responses={201: SubmissionStatusSerializer})
    def post(self, request, slug: str):
        limits.check_submit_rate(request)  # the submit form's counter, before the body is read
        uploads.check_upload(request)
        challenge = selectors.challenge_get(slug=slug)
        serializer = self.InputSerializer(data=request.data, context={"challenge": challenge, "user": request.user})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        submission = services.submission_create(
            challenge=challenge, participant=request.user, title=data["title"], probe_name=data["probe"].name,
            probe_content=data["probe"].read(), writeup=data.get("writeup", ""), team=data.get("team"),
            self_assessment={"harm_type": data["harm_type"], "justification": data.get("self_justification", ""),
                             "ratings": data.get("self_ratings") or {}},
        )
        submission.refresh_from_db()  # the service moved it on to queued
        payload = _submission_payload(request, submission)
        response = Response(SubmissionStatusSerializer(payload).data, status=status.HTTP_201_CREATED)
        response["Location"] = _absolute(request, "api-submission-detail", submission.pk)
        return _with_quota(response, challenge=challenge, user=request.user)


class SubmissionDetailApi(BountyApiView):
    """Poll one of your submissions: state, run status and log tails, metrics once measured."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="submissions_retrieve", responses=SubmissionStatusSerializer)
    def get(self, request, submission_id: int):
        submission = selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
        return Response(SubmissionStatusSerializer(_submission_payload(request, submission)).data)


class FindingAvidApi(BountyApiView):
    """A published finding as an AVID report (the same JSON as /findings/<id>/avid.json)."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="findings_avid_retrieve", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, submission_id: int):
        submission = selectors.finding_get(submission_id=submission_id, user=request.user)
        return Response(avid_report(submission=submission, urls=finding_urls(request, submission)))


class SubmissionCancelApi(BountyApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="submissions_cancel", request=None, responses=SubmissionStatusSerializer)
    def post(self, request, submission_id: int):
        submission = selectors.submission_get_for_user(submission_id=submission_id, user=request.user)
        if not is_own_submission(user=request.user, submission=submission):
            raise Http404("No such submission.")
        services.submission_cancel(submission=submission, actor=request.user)
        submission.refresh_from_db()
        return Response(SubmissionStatusSerializer(_submission_payload(request, submission)).data)


# --- leaderboard --------------------------------------------------------------------------------


class LeaderboardApi(BountyApiView):
    permission_classes = [AllowAny]

    class RowSerializer(serializers.Serializer):
        rank = serializers.IntegerField(allow_null=True, help_text="null for a baseline (never ranked)")
        submission = serializers.IntegerField(source="pk")
        submitter = serializers.SerializerMethodField()
        is_team = serializers.SerializerMethodField()
        title = serializers.CharField()
        harm_type = serializers.CharField()
        score = serializers.FloatField(source="final_score", allow_null=True)
        provisional_score = serializers.SerializerMethodField()
        published_at = serializers.DateTimeField()
        finding_url = serializers.SerializerMethodField()
        is_baseline = serializers.BooleanField(source="is_demo", help_text="a reference probe: shown, not ranked")
        interval = serializers.SerializerMethodField(help_text=leaderboard.INTERVAL_HELP)
        tie_group = serializers.IntegerField(allow_null=True, help_text=leaderboard.TIE_GROUP_HELP)
        replication = serializers.SerializerMethodField(help_text=(
            "the finding's replication on a fresh draw: replicated, not_replicated, same_draw, not_applicable, "
            "failed, pending; null when it has none"))
        robust = serializers.SerializerMethodField(help_text=(
            "true when every significant test held under pad, mirror, jpeg and scale, false when one broke, "
            "null before robustness is done"))

        class Meta:
            ref_name = "LeaderboardRow"

        def get_interval(self, row) -> dict | None:
            return leaderboard.interval_dict(row)
        def get_replication(self, row) -> str | None:
            return leaderboard.replication_mark(row)

        def get_robust(self, row) -> bool | None:
            return leaderboard.robust_mark(row)

        def get_submitter(self, row) -> str:
            return leaderboard.submitter_label(row)

        def get_is_team(self, row) -> bool:
            return row.team_id is not None

        def get_provisional_score(self, row) -> float | None:
            return row.provisional_score if self.context["show_provisional"] else None

        def get_finding_url(self, row) -> str:
            return _absolute(self.context["request"], "finding-detail", row.pk)

    class PhaseSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        starts_at = serializers.DateTimeField()
        ends_at = serializers.DateTimeField()
        leaderboard_visibility = serializers.CharField()

        class Meta:
            ref_name = "LeaderboardPhase"

    class OutputSerializer(serializers.Serializer):
        count = serializers.IntegerField()
        page = serializers.IntegerField()
        num_pages = serializers.IntegerField()
        results = serializers.ListField(child=serializers.DictField())
        phase = serializers.DictField(allow_null=True, help_text="the phase whose board this is; null without phases")

        class Meta:
            ref_name = "LeaderboardPage"

    @extend_schema(
        operation_id="challenge_leaderboard",
        parameters=[
            OpenApiParameter("sort", OpenApiTypes.STR, enum=list(leaderboard.LEADERBOARD_SORTS)),
            OpenApiParameter("harm", OpenApiTypes.STR), OpenApiParameter("q", OpenApiTypes.STR),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("phase", OpenApiTypes.INT, description="a phase's id; default: the open phase"),
        ],
        responses=OutputSerializer,
    )
    def get(self, request, slug: str):
        challenge = selectors.challenge_get(slug=slug)
        board = leaderboard.leaderboard_board(challenge=challenge, user=request.user, params=request.GET)
        phase = self.PhaseSerializer(board.phase).data if board.phase is not None else None
        if board.page is None:  # hidden from this viewer: the error body, and nothing of its rows
            return Response({"error": board.hidden_message, "code": errors.LEADERBOARD_HIDDEN_CODE, "field": "phase",
                             "extra": {"phase": phase}},
                            status=status.HTTP_403_FORBIDDEN)
        context = {"request": request, "show_provisional": challenge.show_provisional}
        rows = self.RowSerializer(board.page.object_list, many=True, context=context).data
        return Response({"count": board.page.paginator.count, "page": board.page.number,
                         "num_pages": board.page.paginator.num_pages, "results": rows, "phase": phase})


class TokenApi(ObtainAuthToken):
    """POST username and password, get the token for `Authorization: Token <key>`.

    Counted by the login form's limiter: per client address, and failures per account (lockout).
    """

    parser_classes = [FormParser, MultiPartParser, SafeJSONParser]  # an unreadable body is a 400

    def get_exception_handler(self):
        return bounty_exception_handler

    def post(self, request, *args, **kwargs):
        data = request.data if hasattr(request.data, "get") else {}
        username = str(data.get("username", ""))
        limits.check_login_allowed(request, username=username)
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            limits.record_login_failure(request, username=username)
            raise


urlpatterns = [
    path("challenges/", ChallengeListApi.as_view(), name="api-challenge-list"),
    path("challenges/<slug:slug>/", ChallengeDetailApi.as_view(), name="api-challenge-detail"),
    path("challenges/<slug:slug>/submissions/", ChallengeSubmissionsApi.as_view(), name="api-challenge-submissions"),
    path("challenges/<slug:slug>/leaderboard/", LeaderboardApi.as_view(), name="api-leaderboard"),
    path("submissions/<int:submission_id>/", SubmissionDetailApi.as_view(), name="api-submission-detail"),
    path("submissions/<int:submission_id>/cancel/", SubmissionCancelApi.as_view(), name="api-submission-cancel"),
    path("findings/<int:submission_id>/avid/", FindingAvidApi.as_view(), name="api-finding-avid"),
    path("token/", TokenApi.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(custom_settings={"DESCRIPTION": API_DESCRIPTION}), name="api-schema"),
]
