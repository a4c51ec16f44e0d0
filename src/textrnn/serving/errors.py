"""One error contract for the whole service: every error is ``{"error": {"code", "message"}}``.

Errors are raised as :class:`ApiError` (or come from FastAPI/Starlette as validation and HTTP
exceptions) and turned into that JSON here; a real fault is logged and answered 500 without a
traceback. The request checks that must run before the body is parsed live here too: the body
size cap (413), the API key (401) and the content type (415).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from textrnn.serving.generator import GenerationRejected

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
    413: "payload_too_large", 415: "unsupported_media_type", 503: "model_not_loaded",
}
# pydantic error type -> our code, per kind of field (text fields, prompt, anything else)
TEXT_CODES = {"string_too_short": "empty_text", "string_pattern_mismatch": "empty_text",
              "string_too_long": "text_too_long", "too_long": "too_many_texts"}
PROMPT_CODES = {"string_too_short": "empty_prompt", "string_pattern_mismatch": "empty_prompt",
                "string_too_long": "prompt_too_long"}
RANGE_TYPES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal",
               "finite_number"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def describe_validation_errors(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """(code, message) for pydantic/FastAPI request errors: the first error picks the code."""
    codes, messages = [], []
    for err in errors:
        loc = [part for part in err.get("loc", ()) if part != "body"]
        kind = err.get("type", "")
        ctx = err.get("ctx") or {}
        field = next((part for part in loc if isinstance(part, str)), None)
        where = ".".join(str(part) for part in loc) or "request body"
        if kind == "json_invalid":
            detail = ctx.get("error", "invalid JSON")
            return "malformed_json", f"request body is not valid JSON: {detail}"
        if kind == "missing":
            message = "request body is missing" if not loc else f"missing field {where!r}"
        elif kind == "extra_forbidden":
            message = f"unknown field {where!r}"
        elif kind in {"model_type", "model_attributes_type", "dict_type"} and not loc:
            message = "request body must be a JSON object"
        elif kind in ("string_too_short", "string_pattern_mismatch"):
            message = f"{where} is empty (or only white space)"
        elif kind == "string_too_long":
            message = f"{where} is longer than the limit of {ctx.get('max_length')} characters"
        elif kind == "too_long":
            message = f"{where} holds more than the limit of {ctx.get('max_length')} items"
        else:
            message = f"{where}: {err.get('msg', 'invalid')}".replace("Value error, ", "")
        if kind in RANGE_TYPES:
            codes.append("out_of_range")
        elif field in ("text", "texts"):
            codes.append(TEXT_CODES.get(kind, "invalid_request"))
        elif field == "prompt":
            codes.append(PROMPT_CODES.get(kind, "invalid_request"))
        elif field == "explain" and kind == "value_error":
            codes.append("not_explainable")
        else:
            codes.append("invalid_request")
        messages.append(message)
    more = f" (and {len(messages) - 3} more)" if len(messages) > 3 else ""
    return (codes or ["invalid_request"])[0], "; ".join(messages[:3]) + more


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(GenerationRejected)
    async def rejected(request: Request, exc: GenerationRejected) -> JSONResponse:
        return error_response(400, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, *describe_validation_errors(list(exc.errors())))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def fault(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal server error (logged on the server)")


def is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class CheckedRoute(APIRoute):
    """A route that checks the API key (401) and, when it takes a body, the content type (415)
    after routing (so 404/405 keep their meaning) but before the body is read or parsed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def checked(request: Request) -> Response:
            expected = request.app.state.settings.api_key
            if expected is not None:
                given = request.headers.get(API_KEY_HEADER, "")
                if not hmac.compare_digest(given.encode(), expected.encode()):
                    raise ApiError(401, "unauthorized",
                                   f"missing or wrong API key in the {API_KEY_HEADER} header")
            if takes_body and not is_json(request.headers.get("content-type")):
                raise ApiError(415, "unsupported_media_type",
                               "send the body as JSON with Content-Type: application/json")
            return await handler(request)

        return checked


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, read before anything parses it.

    A declared Content-Length over the cap is refused unread; a body without one is read up to
    the cap, then replayed to the application.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":   # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "payload_too_large",
                                  f"request body is over the {self.max_bytes}-byte limit")
        await response(scope, receive, send)
