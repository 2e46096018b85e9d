"""The API's documentation: a schema without warnings, and examples that work when sent."""

import json

import pytest
from django.core.management import call_command

from feedback.models import Sample


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        return json.loads(Client().get("/api/schema/", HTTP_ACCEPT="application/json").content)


def test_the_schema_validates_without_a_single_warning(tmp_path):
    # --fail-on-warn turns every generator warning (a name collision, a field it cannot type) into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def test_every_serializer_has_its_own_component(schema):
    components = set(schema["components"]["schemas"])
    assert {"PredictInput", "PredictOutput", "FeedbackInput", "FeedbackOutput", "HealthOutput"} <= components
    assert not components & {"Input", "Output", "InputSerializer", "OutputSerializer"}


def test_predict_is_documented_as_taking_a_drawing_without_a_label_and_answering_the_prediction(schema):
    post = schema["paths"]["/api/predict/"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][body]["properties"]) == {"strokes", "image", "stood"}
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"digit", "confidence", "probabilities", "top_two", "model"} <= set(schema["components"]["schemas"][answer]["properties"])


def _examples(operation: dict, where: str, status: str | None = None) -> dict:
    if where == "request":
        return operation["requestBody"]["content"]["application/json"]["examples"]
    return operation["responses"][status]["content"]["application/json"]["examples"]


@pytest.mark.parametrize("path, answered", [("/api/predict/", 200), ("/api/feedback/", 201)])
def test_every_request_example_in_the_docs_is_answered_as_documented(schema, page_client, path, answered):
    """What "Try it out" does: send the docs' example, get the documented answer."""
    operation = schema["paths"][path]["post"]
    examples = _examples(operation, "request")
    assert len(examples) >= 2
    documented = set(next(iter(_examples(operation, "response", str(answered)).values()))["value"])
    for name, example in examples.items():
        response = page_client.post(path, example["value"], format="json")
        assert response.status_code == answered, (name, response.content)
        assert set(response.json()) == documented, name
    if path == "/api/feedback/":
        assert Sample.objects.count() == len(examples)
