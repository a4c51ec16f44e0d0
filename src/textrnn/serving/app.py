"""The HTTP service: an app factory over already-loaded models (nothing is loaded per request).

No `from __future__ import annotations` here: FastAPI must see the request models that
`_api` builds from the settings as real classes, not as names to resolve in module globals.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

import textrnn
from textrnn.serving import schemas
from textrnn.serving.errors import (
    API_KEY_HEADER,
    ApiError,
    BodySizeLimit,
    CheckedRoute,
    install_error_handlers,
)
from textrnn.serving.generator import TextGenerator
from textrnn.serving.predictor import MicroBatcher, SentimentPredictor
from textrnn.serving.settings import ServingSettings

STATIC = resources.files("textrnn.serving") / "static"


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": schemas.ErrorResponse} for status in statuses}


def create_app(settings: ServingSettings, *, sentiment: SentimentPredictor | None = None,
               generator: TextGenerator | None = None) -> FastAPI:
    """The service answering with ``sentiment`` and ``generator``; either may be None (503)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if app.state.batcher is not None:
            app.state.batcher.close()

    app = FastAPI(title="textrnn", version=textrnn.__version__, lifespan=lifespan,
                  description="Sentiment and text generation with the pipeline's champion "
                  "models. When the service has an API key, /v1/* needs it in the "
                  f"{API_KEY_HEADER} header.")
    app.state.settings = settings
    app.state.sentiment = sentiment
    app.state.generator = generator
    app.state.batcher = (MicroBatcher(sentiment.predict_proba, settings.max_batch_texts)
                         if sentiment is not None else None)
    app.add_middleware(BodySizeLimit, max_bytes=settings.limits.max_body_bytes)
    install_error_handlers(app)
    app.include_router(_probes())
    app.include_router(_api(settings, sentiment))
    app.include_router(_page())
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


# ----------------------------------------------------------------------------- dependencies


def loaded_sentiment(request: Request) -> SentimentPredictor:
    if request.app.state.sentiment is None:
        raise ApiError(503, "model_not_loaded", "no sentiment model is loaded")
    return request.app.state.sentiment


def loaded_generator(request: Request) -> TextGenerator:
    if request.app.state.generator is None:
        raise ApiError(503, "model_not_loaded", "no charlm model is loaded: text generation is off")
    return request.app.state.generator


# Route parameters that FastAPI fills from the dependencies above.
LoadedSentiment = Annotated[SentimentPredictor, Depends(loaded_sentiment)]
LoadedGenerator = Annotated[TextGenerator, Depends(loaded_generator)]


# ----------------------------------------------------------------------------- routes


def _probes() -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/health", response_model=schemas.HealthResponse)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", response_model=schemas.ReadyResponse, responses=_errors(503))
    async def ready(request: Request) -> dict[str, Any]:
        loaded_sentiment(request)   # the sentiment model is required; generation is optional
        state = request.app.state
        return {"status": "ready",
                "models": {"sentiment": True, "charlm": state.generator is not None}}

    return router


def _api(settings: ServingSettings, sentiment: SentimentPredictor | None) -> APIRouter:
    unavailable = ("no sentiment model is loaded" if sentiment is None
                   else sentiment.explain_unavailable)
    SentimentRequest, GenerateRequest = schemas.request_models(settings.limits,
                                                               explain_unavailable=unavailable)
    max_explain_texts = settings.limits.max_explain_texts
    router = APIRouter(prefix="/v1", route_class=CheckedRoute, responses=_errors(401, 500))

    @router.get("/models", response_model=schemas.ModelsResponse)
    async def models(request: Request) -> dict[str, Any]:
        state = request.app.state
        described = []
        if state.sentiment is not None:
            described.append(_describe(state.sentiment.info,
                                       explainable=state.sentiment.explain_unavailable is None))
        if state.generator is not None:
            described.append(_describe(state.generator.info, explainable=False))
        return {"models": described}

    # Fields of a result that only explain: true sets are left out of other answers.
    @router.post("/sentiment", response_model=schemas.SentimentResponse,
                 response_model_exclude_unset=True, responses=_errors(400, 413, 415, 503))
    async def sentiment(body: SentimentRequest, request: Request,  # type: ignore[valid-type]
                        predictor: LoadedSentiment) -> dict[str, Any]:
        texts = body.all_texts()
        if body.explain and len(texts) > max_explain_texts:
            raise ApiError(400, "too_many_texts", f"texts holds {len(texts)} items: with explain "
                           f"the limit is {max_explain_texts} texts per request")
        if not body.explain:
            probabilities = await request.app.state.batcher.submit(texts)
            return _sentiment_response(predictor, predictor.describe(probabilities))
        # The explanations run on a worker thread (off the event loop, not through the batcher)
        # while the batcher computes the probabilities; each explains the class the model
        # predicts, the response's label, unless a near tie rounds the other way: then again.
        probabilities, explanations = await asyncio.gather(
            request.app.state.batcher.submit(texts),
            run_in_threadpool(predictor.explain, texts, steps=body.explain_steps))
        predictions = predictor.describe(probabilities)
        differ = [i for i, (prediction, explanation) in enumerate(zip(predictions, explanations,
                                                                      strict=True))
                  if prediction.label != explanation.label]
        if differ:
            again = await run_in_threadpool(predictor.explain, [texts[i] for i in differ],
                                            steps=body.explain_steps,
                                            labels=[predictions[i].label for i in differ])
            for i, explanation in zip(differ, again, strict=True):
                explanations[i] = explanation
        response = _sentiment_response(predictor, predictions)
        for result, explanation in zip(response["results"], explanations, strict=True):
            result["attributions"] = [
                {"token": token, "score": score}
                for token, score in zip(explanation.tokens, explanation.scores, strict=True)]
            result["log_odds"] = explanation.value
            result["baseline_log_odds"] = explanation.baseline_value
        return response

    @router.post("/generate", response_model=schemas.GenerateResponse,
                 responses=_errors(400, 413, 415, 503))
    async def generate(body: GenerateRequest,  # type: ignore[valid-type]
                       generator: LoadedGenerator) -> dict[str, Any]:
        options = body.model_dump(exclude={"prompt"})
        text = await run_in_threadpool(generator.generate, body.prompt, **options)
        return {"model": generator.info.name, "prompt": body.prompt, "text": text, **options}

    return router


def _page() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    headers = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"}

    @router.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    return router


# ----------------------------------------------------------------------------- helpers


def _sentiment_response(predictor: SentimentPredictor, predictions: list) -> dict[str, Any]:
    positive = predictor.positive_class
    return {
        "model": predictor.info.name,
        "classes": predictor.classes,
        "positive_class": positive,
        "results": [
            {"label": p.label, "probability": p.probabilities[p.label],
             "positive_probability": p.probabilities[positive] if positive else None,
             "probabilities": p.probabilities}
            for p in predictions
        ],
    }


def _describe(info: Any, *, explainable: bool) -> dict[str, Any]:
    fields = asdict(info)
    fields.pop("path")
    fields["classes"] = list(info.classes)
    fields["explainable"] = explainable
    return fields


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, minus the 422 it documents by default (this service answers 400), plus
    the API key scheme when one is configured."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    for path, item in schema["paths"].items():
        for operation in item.values():
            operation["responses"].pop("422", None)
            if app.state.settings.api_key and path.startswith("/v1/"):
                operation["security"] = [{"ApiKey": []}]
    components = schema.setdefault("components", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    if app.state.settings.api_key:
        components["securitySchemes"] = {
            "ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}}
    app.openapi_schema = schema
    return schema
