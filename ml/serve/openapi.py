"""The scoring API's OpenAPI 3.0 document: valid for 3.0 tools, and true to what the server does.

BentoML 1.4 advertises ``openapi: 3.0.2`` but fills the document with pydantic v2's JSON Schema
2020-12, which 3.0 does not accept: ``exclusiveMinimum: 0`` (3.0 wants ``minimum: 0`` plus
``exclusiveMinimum: true``) and ``anyOf: [..., {type: null}]`` (3.0 has ``nullable: true``).
Generated clients and contract testers reject such a document, or read ``exclusiveMinimum: 0``
as "no lower bound" and send requests the server must refuse. Two fixes, at two levels:

* :class:`OpenAPI30Schema` makes our pydantic models emit the 3.0 dialect themselves (BentoML
  inlines their schemas and keeps only the first ``anyOf`` branch, so converting afterwards
  would lose ``nullable``);
* :func:`openapi_document` converts what BentoML adds of its own and replaces its error schemas
  (``detail`` documented as a string, no 503/504) with :class:`~ml.serve.schemas.ErrorBody`,
  the one body every scoring error has, and marks the request body required (BentoML omits
  it, which documents an empty request as valid). :class:`OpenAPIDocument` serves the result at
  ``/docs.json`` in place of BentoML's.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

SCORING_ROUTES = ("/predict", "/predict_batch")
ERROR_SCHEMA = "ErrorBody"
ERROR_STATUSES = {
    "400": "Invalid request: malformed JSON, wrong type, out of range, unknown field.",
    "404": "A customer the feature store does not know.",
    "500": "Unexpected server error (counted; never caused by the request's content).",
    "503": "No servable model yet (see /readyz).",
    "504": "Not answered within the server's request timeout.",
}


def to_openapi30(schema: Any) -> Any:
    """A copy of a JSON Schema (2020-12, as pydantic writes it) in OpenAPI 3.0's dialect."""
    if isinstance(schema, list):
        return [to_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: to_openapi30(value) for key, value in schema.items()}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if _is_number(out.get(bound)):
            out[limit], out[bound] = out[bound], True
    for union in ("anyOf", "oneOf"):
        if union in out:
            _null_to_nullable(out, union)
    if "const" in out:  # 3.0 has no const; a one-value enum says the same
        out["enum"] = [out.pop("const")]
    return out


class OpenAPI30Schema(GenerateJsonSchema):
    """Pydantic's schema generator, writing OpenAPI 3.0 schemas (see :func:`to_openapi30`)."""

    def generate(self, schema, mode="validation"):
        return to_openapi30(super().generate(schema, mode))


def openapi_document(spec: dict) -> dict:
    """BentoML's document made valid OpenAPI 3.0, with the scoring routes' real error bodies.

    Args:
        spec: ``Service.openapi_spec.asdict()``.

    Returns:
        A new document; ``spec`` is left as it was.
    """
    from ml.serve.schemas import ErrorBody

    document = json.loads(json.dumps(spec))  # a copy, with status codes as strings, as served
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in list(schemas.items()):
        schemas[name] = to_openapi30(schema)
    error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error.pop("$defs", {}))
    schemas[ERROR_SCHEMA] = error
    for route in SCORING_ROUTES:
        operation = document["paths"][route]["post"]
        # BentoML leaves `required` out, which in OpenAPI means "no body is valid too"; the
        # server rightly rejects an empty body (every field is missing).
        operation["requestBody"] = {**to_openapi30(operation["requestBody"]), "required": True}
        responses = operation["responses"]
        responses["200"] = to_openapi30(responses["200"])
        responses.update({status: _error_response(why) for status, why in ERROR_STATUSES.items()})
    return document


def _error_response(description: str) -> dict:
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _null_to_nullable(schema: dict, union: str) -> None:
    branches = [b for b in schema[union] if b != {"type": "null"}]
    if len(branches) == len(schema[union]):
        return
    schema["nullable"] = True
    if len(branches) == 1 and "$ref" not in branches[0]:  # Optional[X]: X itself, nullable
        del schema[union]
        schema.update({k: v for k, v in branches[0].items() if k not in schema})
    elif len(branches) == 1:  # 3.0 ignores a $ref's siblings: wrap it to keep `nullable`
        del schema[union]
        schema["allOf"] = branches
    else:
        schema[union] = branches


class OpenAPIDocument:
    """ASGI middleware answering ``GET /docs.json`` with :func:`openapi_document`.

    BentoML builds the document on each request and offers no hook to change it; a middleware
    is its supported extension point. The document is built once, on first request.
    """

    def __init__(self, app, service, path: str = "/docs.json") -> None:
        self.app = app
        self.service = service
        self.path = path
        self._body: bytes | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if self._body is None:
            document = openapi_document(self.service.openapi_spec.asdict())
            self._body = json.dumps(document).encode()
        length = str(len(self._body)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})
