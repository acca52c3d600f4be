"""Property tests: schemathesis drives every operation of the OpenAPI spec; no input may cause a 5xx."""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

SKIP = {"/admin/reload"}  # reloads the models: slow, and covered by its own test


def test_no_input_makes_a_server_error(server):
    schema = schemathesis.openapi.from_dict(httpx.get(server.url + "/openapi.json", timeout=30).json())
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIP:
            continue

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def no_server_error(case):
            response = case.call(base_url=server.url, headers=server.admin, timeout=60)
            case.validate_response(response, checks=[not_a_server_error])

        no_server_error()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert {"POST /tts", "GET /tts", "POST /v1/audio/speech", "POST /v1/voices", "DELETE /v1/voices/{voice_id}"} <= set(checked)
