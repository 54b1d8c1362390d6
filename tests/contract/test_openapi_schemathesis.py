"""Schemathesis against the OpenAPI document and the real server: no 500s, and every
response has a documented status, content type and shape.

Bounded: a few examples per operation and no deadline, so it fits CI on two cores. The
server is a child process (tests/support/server.py); requests carry the admin token, and
schemathesis also sends requests the document forbids (bad types, missing fields) to check
they are refused, not crashed on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from server.openapi import openapi_document
from tests.support.server import ServerProcess

MAX_EXAMPLES = 25

schema = schemathesis.openapi.from_dict(openapi_document())

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir=Path(tmp_path_factory.mktemp("schemathesis")))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        log = server.log_text()
        print(f"schemathesis: {log.count(' /api/v1/')} requests answered")
        # A 500 logs its traceback on the server; show it when a check failed.
        if "Traceback" in log:
            print(log[-4000:])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, api_server: ServerProcess
) -> None:
    case.call_and_validate(
        base_url=api_server.base_url,
        headers={"Authorization": f"Bearer {api_server.admin_token}"},
        checks=CHECKS,
        timeout=10,
    )
