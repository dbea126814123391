"""The gateway duties HAProxy exports, through real HAProxy: a mock, a rewrite, versions."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from strangler.stack.supervisor import Supervisor, free_port
from tests.integration.haproxy.support import needs_haproxy, running_plane
from tests.integration.proxy_support import echo_spec

pytestmark = [needs_haproxy, pytest.mark.live]

ROUTES = """
backends:
  a: {{url: "http://127.0.0.1:{a}", health: /healthz}}
  b: {{url: "http://127.0.0.1:{b}", health: /healthz}}
  stub:
    mock:
      answers:
        - {{method: GET, path: /api/orders/42, body: {{id: 42, status: shipped}}}}
default_backend: a
routes:
  - name: orders
    match: {{prefix: /api/orders/}}
    split: {{stub: 100}}
  - name: verification
    match: {{prefix: /api/verification/}}
    split: {{b: 100}}
    backends:
      b:
        rewrite:
          prefix: /v1/verify/
          set_headers: {{X-Api: "1"}}
          remove_headers: [Cookie]
          response: {{set_headers: {{X-Served-By: new}}}}
  - name: v2
    match: {{prefix: /api/verification/, header: {{Accept-Version: "2"}}}}
    split: {{a: 100}}
"""


def test_haproxy_serves_a_mock_a_rewrite_and_a_version_as_the_embedded_proxy(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    a, b = free_port(), free_port()
    supervisor.start(echo_spec("a", a))
    supervisor.start(echo_spec("b", b))
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES.format(a=a, b=b))
    with running_plane(routes, tmp_path / "haproxy") as plane:
        url = f"http://{plane.settings.bind[0]}:{plane.settings.bind[1]}"
        mocked = requests.get(url + "/api/orders/42", timeout=10)
        assert (mocked.status_code, mocked.json()) == (200, {"id": 42, "status": "shipped"})
        assert mocked.headers["X-Strangler-Backend"] == "stub" and mocked.headers["X-Request-Id"]
        missing = requests.get(url + "/api/orders/7", timeout=10)
        assert (missing.status_code, missing.json()["error"]) == (404, "no_mock_answer")
        sent = requests.post(
            url + "/api/verification/send?x=1", json={"to": "a@b.example"}, timeout=10,
            headers={"Cookie": "session=1"},
        )  # fmt: skip
        echo = sent.json()
        assert (echo["backend"], echo["path"], echo["query"]) == ("b", "/v1/verify/send", "x=1")
        assert echo["headers"]["x-api"] == "1" and "cookie" not in echo["headers"]
        assert sent.headers["X-Served-By"] == "new" and sent.headers["X-Strangler-Backend"] == "b"
        v2 = requests.post(
            url + "/api/verification/send", json={}, headers={"Accept-Version": "2"}, timeout=10
        )
        assert (v2.json()["backend"], v2.json()["path"]) == ("a", "/api/verification/send")
