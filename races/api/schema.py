"""The API's OpenAPI schema tells the truth about errors: which 4xx answers each operation can give.

drf-spectacular documents only the success answer. ``LeagueAutoSchema`` (the schema class of every API view,
through ``LeagueView``) adds the error answers the DRF machinery gives by itself — 400 for a request body or
declared query filters that fail validation, 401 when the method needs a signed-in racer, 403 for a CSRF
failure of an unsafe method under a session cookie, 404 for a path lookup or a page beyond the last, 413 for an
upload beyond the limit — plus the refusals of the services a view declares in ``rule_refusals`` (method ->
statuses). Error bodies are ``{"detail": ..., "code": ...}``; a 400 may instead map fields to their messages.
An empty ``?page=`` is declared as allowed (DRF serves the first page).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated, IsAuthenticatedOrReadOnly


class ApiErrorSerializer(serializers.Serializer):
    """A refused request: a message for people and, for refused business rules, a stable code."""

    detail = serializers.CharField(help_text="What was refused, written for the racer.")
    code = serializers.CharField(required=False, help_text="Stable code of a refused rule (e.g. forbidden).")
    field = serializers.CharField(required=False, help_text="The request field the refusal is about, if one.")


_VALIDATION_ERROR = {
    "type": "object",
    "description": 'A refused rule ({"detail": ..., "code": ...}) or the messages of each invalid field '
    '({"field": ["message", ...]}).',
    "additionalProperties": True,
}
_DESCRIPTIONS = {
    400: "Invalid input or a refused rule.",
    401: "Authentication required: send `Authorization: Token <key>`.",
    403: "Not allowed (not the organiser, or a session request without its CSRF token).",
    404: "Not found, or not visible to you (private races), or a page beyond the last.",
    413: "The upload is beyond the size limit.",
    429: "Too many requests: wait a moment and try again.",
    503: "The server cannot do this right now (e.g. no sandbox to run code in).",
}


class LeagueAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status_code in sorted(self._error_statuses()):
            body = _VALIDATION_ERROR if status_code == 400 else ApiErrorSerializer
            responses.setdefault(
                str(status_code),
                self._get_response_for_code(OpenApiResponse(body, _DESCRIPTIONS[status_code]), str(status_code)),
            )
        return responses

    def _get_pagination_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_pagination_parameters()
        for parameter in parameters:
            if parameter.get("name") == "page":  # DRF reads ?page= as the first page
                parameter["allowEmptyValue"] = True
        return parameters

    def _error_statuses(self) -> set[int]:
        view, method = self.view, self.method
        unsafe = method not in SAFE_METHODS
        statuses = set(getattr(view, "rule_refusals", {}).get(method, ()))
        if self._get_request_body() or self._declared_query_filters():
            statuses.add(400)
        permissions = {type(permission) for permission in view.get_permissions()}
        if IsAuthenticated in permissions or (IsAuthenticatedOrReadOnly in permissions and unsafe):
            statuses.add(401)
        if unsafe:
            statuses.add(403)  # SessionAuthentication enforces CSRF on unsafe methods
        if "{" in self.path or (self._is_list_view() and self._get_paginator() is not None):
            statuses.add(404)
        if "multipart/form-data" in (self._get_request_body() or {}).get("content", {}):
            statuses.add(413)
        return statuses

    def _declared_query_filters(self) -> bool:
        """Query parameters other than pagination: the views validate them (400)."""
        paging = {"page", "page_size"}
        return any(
            parameter.get("in") == "query" and parameter.get("name") not in paging
            for parameter in self._get_parameters()
        )
