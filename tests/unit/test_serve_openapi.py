"""The scoring API's document is valid OpenAPI 3.0 and documents the bodies the server sends."""

import json

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator, validate

from ml.serve.openapi import ERROR_SCHEMA, SCORING_ROUTES, openapi_document, to_openapi30


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({"exclusiveMinimum": 0}, {"minimum": 0, "exclusiveMinimum": True}),
        ({"exclusiveMaximum": 1.5}, {"maximum": 1.5, "exclusiveMaximum": True}),
        ({"exclusiveMinimum": True, "minimum": 0}, {"exclusiveMinimum": True, "minimum": 0}),
        (
            {"anyOf": [{"type": "integer"}, {"type": "null"}], "title": "T"},
            {"type": "integer", "nullable": True, "title": "T"},
        ),
        (
            {"anyOf": [{"$ref": "#/x"}, {"type": "null"}]},
            {"allOf": [{"$ref": "#/x"}], "nullable": True},
        ),
        ({"const": "a"}, {"enum": ["a"]}),
        (
            {"properties": {"p": {"exclusiveMinimum": 0}}},
            {"properties": {"p": {"minimum": 0, "exclusiveMinimum": True}}},
        ),
    ],
)
def test_json_schema_becomes_openapi_30(schema, expected):
    assert to_openapi30(schema) == expected


@pytest.fixture(scope="module")
def document():
    from ml.serve.service import CreditRiskService

    return openapi_document(CreditRiskService.openapi_spec.asdict())


def test_document_is_valid_openapi_30(document):
    validate(document, cls=OpenAPIV30SpecValidator)
    json.dumps(document)  # what /docs.json serves


@pytest.mark.parametrize("route", SCORING_ROUTES)
def test_scoring_routes_document_their_errors_and_require_a_body(document, route):
    operation = document["paths"][route]["post"]
    assert operation["requestBody"]["required"] is True
    for status in ("400", "404", "500", "503", "504"):
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    assert 'exclusiveMinimum": 0' not in json.dumps(document)
