"""Fuzzing against the service's own OpenAPI schema (schemathesis): for valid and invalid
requests alike, no 5xx, no undocumented status, no response that breaks the schema.

schemathesis' pytest fixture loader does not work with this pytest (it sets a private node
attribute), so each operation's case strategy is driven by Hypothesis directly, per mode.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from serving_fixtures import shared_models

from textrnn.serving import Limits, ServingSettings, create_app, load_models

# Small generation limits keep each generated request short; the schema states them.
LIMITS = Limits(max_generate_chars=40, max_texts=8, max_text_chars=300, max_prompt_chars=100)
OPERATIONS = ["GET /health", "GET /ready", "GET /v1/models", "POST /v1/sentiment",
              "POST /v1/generate"]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    sentiment, generator = load_models(shared_models(tmp_path_factory, "both"))
    app = create_app(ServingSettings(limits=LIMITS), sentiment=sentiment, generator=generator)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_schema_lists_every_operation(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
CASES = [(label, POSITIVE) for label in OPERATIONS] + [
    (label, NEGATIVE) for label in OPERATIONS if label.startswith("POST")]  # GETs take no input


@pytest.mark.parametrize("label, mode", CASES,
                         ids=[f"{label}-{mode.value}" for label, mode in CASES])
def test_operation_conforms_to_its_schema(api_schema, label, mode):
    operation = api_schema.find_operation_by_label(label)
    examples = 25 if label.startswith("POST") else 3
    # A schema-valid prompt may hold no character the model knows (the schema cannot say which
    # characters a model knows): that one 400 is allowed, and checked below, for /v1/generate.
    excluded = [positive_data_acceptance] if label == "POST /v1/generate" else []
    seen: list[tuple[int, str | None]] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call()
        case.validate_response(response, excluded_checks=excluded)  # 5xx, status, schema, ...
        code = response.json()["error"]["code"] if response.status_code >= 400 else None
        seen.append((response.status_code, code))

    check()
    assert seen and max(status for status, _ in seen) < 500
    if mode is POSITIVE:            # a request the schema allows is served
        assert {(s, c) for s, c in seen if s != 200} <= {(400, "unknown_characters")}, seen
        assert (200, None) in seen
    else:                           # and one it forbids is refused with a 4xx, never served
        assert all(400 <= status < 500 for status, _ in seen), seen
