"""Request and response bodies of the HTTP API.

Request models are built from the service's :class:`Limits`, so the OpenAPI schema states the
limits that the service enforces (one source), and a request outside them fails validation. They
also say whether ``explain`` can be true: not when the loaded model cannot be explained.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from textrnn.sentiment.explain import COMPLETENESS_TOLERANCE, DEFAULT_STEPS, MIN_STEPS
from textrnn.serving.settings import Limits

Strategy = Literal["greedy", "beam", "stochastic_beam", "sample"]
NOT_BLANK = r"\S"   # at least one character that is not white space


class _Request(BaseModel):
    # Unknown fields are errors; no loose coercion ("1" is not a number, 1 is not a string).
    model_config = ConfigDict(extra="forbid", strict=True)


def _utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text holds a lone surrogate (\\ud800-\\udfff): "
                         "not valid Unicode") from None
    return value


def _integral(value: object) -> object:
    """JSON Schema counts 2.0 as an integer; so does the service (2.5, "2" and true stay errors)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def request_models(limits: Limits, *, explain_unavailable: str | None = None,
                   ) -> tuple[type[_Request], type[_Request]]:
    """The (SentimentRequest, GenerateRequest) models for ``limits``; ``explain_unavailable``:
    why the loaded sentiment model cannot be explained (None when it can), which makes
    ``explain: true`` a 400 that says so, and ``false`` the only value the schema allows."""
    Text = Annotated[
        str,
        StringConstraints(min_length=1, max_length=limits.max_text_chars, pattern=NOT_BLANK),
        AfterValidator(_utf8),
    ]
    Prompt = Annotated[
        str,
        StringConstraints(min_length=1, max_length=limits.max_prompt_chars, pattern=NOT_BLANK),
        AfterValidator(_utf8),
    ]

    class SentimentRequest(_Request):
        """One text (`text`) or a batch (`texts`): exactly one of the two."""

        model_config = ConfigDict(
            json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["texts"]}]}
        )

        # Absent means None; an explicit null is a wrong type, as the schema (no null) says.
        text: Text = Field(None, description="one text to classify")  # type: ignore[assignment]
        texts: list[Text] = Field(  # type: ignore[assignment]
            None, min_length=1, max_length=limits.max_texts,
            description="texts classified as one batch"
        )
        explain: bool = Field(
            False, json_schema_extra={"enum": [False]} if explain_unavailable else None,
            description="also return each word's attribution towards the label (integrated "
            f"gradients); at most {limits.max_explain_texts} texts per request"
            + (f". Unavailable: {explain_unavailable}" if explain_unavailable else ""),
        )
        explain_steps: int = Field(
            min(DEFAULT_STEPS, limits.max_explain_steps), ge=MIN_STEPS,
            le=limits.max_explain_steps,
            description="with explain: the most points of the path at which one text's "
            "gradients are computed; more points where the attributions do not yet add up to "
            f"log_odds - baseline_log_odds within {COMPLETENESS_TOLERANCE}",
        )

        _steps = field_validator("explain_steps", mode="before")(_integral)

        @field_validator("explain")
        @classmethod
        def _explainable(cls, value: bool) -> bool:
            if value and explain_unavailable:
                raise ValueError(explain_unavailable)
            return value

        @model_validator(mode="after")
        def _exactly_one(self) -> SentimentRequest:
            if (self.text is None) == (self.texts is None):
                raise ValueError("give exactly one of 'text' (a string) or 'texts' "
                                 "(a list of strings)")
            return self

        def all_texts(self) -> list[str]:
            return [self.text] if self.text is not None else list(self.texts or [])

    class GenerateRequest(_Request):
        prompt: Prompt = Field(description="text the generated characters continue")
        length: int = Field(200, ge=1, le=limits.max_generate_chars,
                            description="characters to generate")
        strategy: Strategy = Field(
            "sample", description="greedy | beam (deterministic) | stochastic_beam | sample")
        temperature: float = Field(
            1.0, ge=limits.min_temperature, le=limits.max_temperature, allow_inf_nan=False,
            description="softmax temperature (sample, stochastic_beam)",
        )
        beam_width: int = Field(5, ge=1, le=limits.max_beam_width,
                                description="beams (beam, stochastic_beam)")
        top_k: int = Field(0, ge=0, le=limits.max_top_k,
                           description="sample among the k most likely characters; 0 = all")
        top_p: float = Field(
            1.0, gt=0, le=1, allow_inf_nan=False,
            description="nucleus sampling (sample): sample among the smallest set of most likely "
            "characters whose probability reaches top_p, applied after top_k; 0 < top_p <= 1, "
            "1 = off",
        )
        seed: int | None = Field(None, ge=0, le=2**31 - 1,
                                 description="makes sample and stochastic_beam reproducible; "
                                 "null = random")

        # A field validator, not an annotation: an annotated one hides ge/le from the schema.
        _integers = field_validator("length", "beam_width", "top_k", "seed", mode="before")(
            _integral)

    return SentimentRequest, GenerateRequest


class Attribution(BaseModel):
    token: str = Field(description="a word as the model read it (ASCII lower case, no "
                       "punctuation)")
    score: float = Field(description="its part of log_odds - baseline_log_odds: > 0 pushes "
                         "towards `label`, < 0 against it")


class SentimentResult(BaseModel):
    label: str = Field(description="the most probable class")
    probability: float = Field(description="probability of `label`")
    positive_probability: float | None = Field(
        description="probability of the response's `positive_class`; null when it has none"
    )
    probabilities: dict[str, float] = Field(description="every class with its probability")
    # Only with explain: true (absent otherwise).
    attributions: list[Attribution] | None = Field(
        None, description="with explain: one per word the model read (the first "
        "output_sequence_length words), in order")
    log_odds: float | None = Field(
        None, description="with explain: log(probability / (1 - probability)) of `label`, "
        "computed from the logits (finite even where `probability` rounds to 1): what the "
        "attributions explain")
    baseline_log_odds: float | None = Field(
        None, description="with explain: the log-odds of `label` for all-zero word vectors; "
        f"sum(scores) = log_odds - baseline_log_odds within {COMPLETENESS_TOLERANCE} unless "
        "explain_steps ran out")


class SentimentResponse(BaseModel):
    model: str
    classes: list[str]
    positive_class: str | None = Field(
        description="'positive' when the model has that class, else the second class of a binary "
        "model; null for three or more classes"
    )
    results: list[SentimentResult] = Field(description="one per input text, in input order")


class GenerateResponse(BaseModel):
    model: str
    prompt: str
    text: str = Field(description="the generated characters (the prompt not repeated)")
    strategy: Strategy
    length: int
    temperature: float
    beam_width: int
    top_k: int
    top_p: float
    seed: int | None


class ModelDescription(BaseModel):
    task: Literal["sentiment", "charlm"]
    name: str
    explainable: bool = Field(description="sentiment: `explain: true` works (the project's "
                              "neural models); false for scikit-learn models and charlm")
    dataset: str | None
    classes: list[str]
    metrics: dict[str, Any] = Field(description="validation metrics from meta.json")
    git_commit: str | None
    trained_at: str | None = Field(description="ISO 8601, UTC")
    mlflow_run_id: str | None
    selected_on: str | None = Field(description="the validation metric it was chosen on")
    selected_value: float | None


class ModelsResponse(BaseModel):
    models: list[ModelDescription]


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ready"]
    models: dict[str, bool] = Field(description="task -> loaded")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable, e.g. invalid_request")
    message: str = Field(description="for a person: what was wrong")


class ErrorResponse(BaseModel):
    error: ErrorDetail
