"""JSON errors for the API: clients of /api/ never receive an HTML error page."""

import logging
from typing import Any

from django.http import Http404, HttpRequest, JsonResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

API_PREFIX = "/api/"
logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a JSON 500 for unexpected errors inside API views.

    DRF returns None for exceptions it does not know; Django would then answer with its HTML debug
    page when DEBUG is on (handler500, which answers JSON for /api/, only runs with DEBUG off).
    """
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    logger.exception("unhandled API error", exc_info=exc)
    return Response({"detail": "Internal server error."}, status=500)


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    detail = "Not found."
    if isinstance(exception, Http404) and exception.args and isinstance(exception.args[0], str):
        detail = exception.args[0]
    return JsonResponse({"detail": detail}, status=404)


def api_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal server error."}, status=500)
