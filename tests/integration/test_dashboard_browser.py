"""The dashboard in a real browser (Debian's headless Chromium, through Selenium and Debian's
chromium-driver) against the live stack: the split, rates under load, a shift made on the
page that the proxy serves and the audit log records, and the requests it must refuse."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from strangler.stack.running import MIGRATED_ROUTE, RunningStack, running_stack
from tests.integration.haproxy.support import needs_haproxy
from tests.integration.polling import wait_for
from tests.repository import REPO

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.slow]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = REPO / "var"
BACKEND = "verification"  # the migrated route's new backend


def browser_or_skip():
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        message = "chromium and chromium-driver are not installed (scripts/setup installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI's setup installs them: their absence is a failure there
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Traffic:
    """Verification sends through the public URL from one thread, each to a new number."""

    def __init__(self, proxy_url: str) -> None:
        self.url = proxy_url + "/api/verification/send"
        self.stop = threading.Event()
        self.served: dict[str, int] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        n = 0
        while not self.stop.wait(0.02):
            n += 1
            body = {"to": f"+1555{os.getpid() % 1000:03d}{n:04d}", "channel": "sms"}
            response = session.post(self.url, json=body, timeout=10)
            backend = response.headers.get("X-Strangler-Backend", "?")
            self.served[backend] = self.served.get(backend, 0) + 1

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


@pytest.fixture(scope="module", params=["embedded", pytest.param("haproxy", marks=needs_haproxy)])
def stack(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    var = tmp_path_factory.mktemp(f"dashboard-{request.param}") / "var"
    env = {"STRANGLER_AUDIT_LOG": str(var / "audit.log")}
    # Every address: the remote-client test calls it from this machine's non-loopback one.
    with running_stack(
        var, workers=2, env=env, admin_host="0.0.0.0", data_plane=request.param
    ) as running:
        yield running


def plane_of(stack: RunningStack) -> str:
    return status_cli(stack).get("data_plane", "embedded")


def screenshot(browser, stack: RunningStack, percent: int) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    suffix = "" if plane_of(stack) == "embedded" else "-haproxy"
    browser.save_screenshot(str(SCREENSHOTS / f"dashboard-{percent}{suffix}.png"))


@pytest.fixture(scope="module")
def browser():
    driver = browser_or_skip()
    yield driver
    driver.quit()


def page_url(stack: RunningStack) -> str:
    return stack.cfg.admin_url + "/_strangler/"


def read(browser, selector: str, attribute: str | None = None) -> str | None:
    """Text (or an attribute) of what `selector` finds, read in one step: the page replaces
    its table rows and chart lines every refresh, so a found element may be gone a moment
    later."""
    return browser.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? (arguments[1] ? e.getAttribute(arguments[1]) : e.textContent) : null;",
        selector,
        attribute,
    )


def rate_of(browser, backend: str) -> float:
    return float(read(browser, f"#backend-{backend} .rate") or 0)


def chart_last(browser, chart: str, backend: str) -> float:
    value = read(browser, f"#chart-{chart} polyline[data-backend='{backend}']", "data-last")
    return float(value) if value else 0.0


def new_percent(browser, route: str = MIGRATED_ROUTE) -> str | None:
    cards = browser.find_elements("css selector", f"#route-{route}")
    return cards[0].get_attribute("data-new-percent") if cards else None


def status_cli(stack: RunningStack) -> dict:
    strangler = str(Path(sys.executable).with_name("strangler"))
    out = subprocess.run(
        [strangler, "status", "--admin", stack.cfg.admin_url, "--json"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return json.loads(out)


def audit_records(stack: RunningStack) -> list[dict]:
    path = stack.cfg.var_dir / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_page_shows_the_split_and_the_rates_move_under_load(stack, browser) -> None:
    browser.get(page_url(stack))
    wait_for(lambda: new_percent(browser) == "0", "the page to show the route at 0 %")
    bar = browser.find_element("css selector", f"#route-{MIGRATED_ROUTE} .bar").text
    assert "monolith 100%" in bar
    assert rate_of(browser, "monolith") == 0.0
    with Traffic(stack.proxy_url) as traffic:
        wait_for(lambda: rate_of(browser, "monolith") > 0, "the monolith's rate to move", 30)
        wait_for(lambda: chart_last(browser, "rate", "monolith") > 0, "the rate chart", 30)
        if plane_of(stack) == "embedded":  # HAProxy keeps no latency percentiles
            wait_for(lambda: chart_last(browser, "p99", "monolith") > 0, "the p99 chart", 30)
        screenshot(browser, stack, 0)
    assert set(traffic.served) == {"monolith"}
    assert browser.find_elements("css selector", ".rollout-controls:not([hidden])") == []


def test_a_shift_made_on_the_page_is_served_agreed_by_status_and_audited(stack, browser) -> None:
    browser.get(page_url(stack))
    wait_for(lambda: new_percent(browser) == "0", "the page to show the route at 0 %")
    form = browser.find_element("css selector", f"#route-{MIGRATED_ROUTE} form.act")
    reason = "ramp to half: error rate flat for a day"
    with Traffic(stack.proxy_url) as traffic:
        percent = form.find_element("css selector", ".percent")
        percent.clear()
        percent.send_keys("50")
        form.find_element("css selector", ".reason").send_keys(reason)
        form.find_element("css selector", "button.shift").click()
        result = browser.find_element("css selector", f"#route-{MIGRATED_ROUTE} output.result")
        wait_for(lambda: "served by every worker" in result.text, "the page to see it applied")
        assert "monolith 100% → 50%" in result.text and "verification 0% → 50%" in result.text
        assert new_percent(browser) == "50"
        doc = status_cli(stack)
        route = next(r for r in doc["routes"] if r["name"] == MIGRATED_ROUTE)
        assert route["split"] == {"monolith": 50, BACKEND: 50} and doc["converged"]
        wait_for(lambda: rate_of(browser, BACKEND) > 0, "the new backend's rate to move", 30)
        wait_for(lambda: chart_last(browser, "rate", BACKEND) > 0, "its rate chart", 30)
        screenshot(browser, stack, 50)
    assert traffic.served.get(BACKEND, 0) > 0  # the proxy serves the split
    last = audit_records(stack)[-1]
    assert (last["action"], last["route"], last["reason"]) == ("shift", MIGRATED_ROUTE, reason)
    assert last["new_split"] == {"monolith": 50, BACKEND: 50}
    assert last["user"] == "dashboard from 127.0.0.1"
    wait_for(lambda: reason in browser.find_element("css selector", "#audit tbody").text,
             "the audit line on the page")  # fmt: skip


class Attacker(BaseHTTPRequestHandler):
    """Another site, open in the same browser, posting to the admin listener."""

    target = ""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        action = json.dumps({"action": "shift", "route": MIGRATED_ROUTE, "percent": 100,
                             "reason": "cross-site"})  # fmt: skip
        body = f"""<!doctype html><body><p id="state">sending</p>
<form id="f" method="POST" action="{self.target}" enctype="text/plain" target="sink">
<input type="hidden" name='{action[:-1]}, "x": "' value='"}}'></form>
<iframe name="sink"></iframe><script>
fetch("{self.target}", {{method: "POST", mode: "no-cors", headers: {{"Content-Type":
"text/plain"}}, body: '{action}'}}).finally(() => {{
  document.getElementById("f").submit(); document.getElementById("state").textContent = "sent";
}});</script></body>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_cross_site_post_is_refused(stack, browser) -> None:
    actions = stack.cfg.admin_url + "/_strangler/actions"
    before = len(audit_records(stack))
    Attacker.target = actions
    server = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://localhost:{server.server_address[1]}/")
        wait_for(lambda: browser.find_element("id", "state").text == "sent", "the attack")
        sent = dict(action="shift", route=MIGRATED_ROUTE, percent=100, reason="cross-site")
        refused = requests.post(actions, json=sent, timeout=10, headers={
            "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})  # fmt: skip
        assert (refused.status_code, refused.json()["error"]) == (403, "cross_site")
        as_form = requests.post(actions, data=json.dumps(sent), timeout=10,
                                headers={"Content-Type": "text/plain"})  # fmt: skip
        assert (as_form.status_code, as_form.json()["error"]) == (415, "unsupported_media_type")
    finally:
        server.shutdown()
        server.server_close()
    route = next(r for r in status_cli(stack)["routes"] if r["name"] == MIGRATED_ROUTE)
    assert route["split"][BACKEND] != 100
    assert len(audit_records(stack)) == before  # nothing edited, nothing audited


def other_local_address() -> str | None:
    """One of this machine's own addresses that is not loopback, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_a_remote_client_without_a_token_is_refused(stack) -> None:
    address = other_local_address()
    if address is None:
        pytest.skip("this machine has no address but loopback to call from")
    base = f"http://{address}:{stack.cfg.admin_port}/_strangler/"
    page = requests.get(base, timeout=10)
    assert (page.status_code, page.json()["error"]) == (403, "forbidden")
    assert "<html" not in page.text
    act = requests.post(base + "actions", timeout=10, json={"action": "rollback",
                        "route": MIGRATED_ROUTE, "reason": "remote"})  # fmt: skip
    assert act.status_code == 403
    assert requests.get(base + "history", timeout=10).status_code == 403
    assert requests.get(page_url(stack), timeout=10).status_code == 200  # loopback still may


def test_the_page_keeps_updating_when_a_worker_is_killed(stack, browser) -> None:
    if plane_of(stack) != "embedded":
        pytest.skip("HAProxy's workers are its own; its reloads are tested in haproxy/")
    browser.get(page_url(stack))
    wait_for(lambda: browser.find_element("id", "workers").text == "2", "both workers")
    victim = status_cli(stack)["workers"][0]["pid"]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        pids = {w["pid"] for w in status_cli(stack)["workers"] if not w["stale"]}
        return len(pids) == 2 and victim not in pids

    wait_for(replaced, "the master to restart the worker", 30)
    with Traffic(stack.proxy_url):
        seen = read(browser, "#backend-monolith .total")
        wait_for(lambda: read(browser, "#backend-monolith .total") != seen,
                 "the page to keep updating", 30)  # fmt: skip
        wait_for(lambda: browser.find_element("id", "workers").text == "2", "both workers")
    assert browser.find_element("id", "live").text.startswith("live")


def test_with_a_token_the_page_opens_once_with_it_then_runs_on_its_cookie(tmp_path, browser):
    token = "dashboard-test-token"
    env = {"STRANGLER_ADMIN_TOKEN": token, "STRANGLER_AUDIT_LOG": str(tmp_path / "audit.log")}
    with running_stack(tmp_path / "var", workers=1, env=env) as running:
        url = page_url(running)
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url + "?token=wrong", timeout=10).status_code == 401
        browser.delete_all_cookies()
        browser.get(url + "?token=" + token)
        wait_for(lambda: new_percent(browser) == "0", "the page to load its status")
        assert "token" not in browser.current_url  # taken out of the address (and history)
        cookie = browser.get_cookie("strangler_admin")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        form = browser.find_element("css selector", f"#route-{MIGRATED_ROUTE} form.act")
        percent = form.find_element("css selector", ".percent")
        percent.clear()
        percent.send_keys("10")
        form.find_element("css selector", ".reason").send_keys("canary, with the token")
        form.find_element("css selector", "button.shift").click()
        wait_for(lambda: new_percent(browser) == "10", "the shift made with the cookie")
        browser.delete_all_cookies()
        browser.get(url)
        assert "the admin token is required" in browser.page_source


def test_pipelined_admin_requests_are_answered_in_their_order(stack) -> None:
    """A slow action first, then a quick read: the answers still come back in order."""
    port = stack.cfg.admin_port
    body = json.dumps({"action": "rollback", "route": MIGRATED_ROUTE, "reason": "pipelined"})
    head = f"Host: 127.0.0.1:{port}\r\n"
    wire = (
        f"POST /_strangler/actions HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
        f"GET /_strangler/history HTTP/1.1\r\n{head}\r\n"
        f"GET /_strangler/nope HTTP/1.1\r\n{head}Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(wire.encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    text = received.decode()
    assert re.findall(r"HTTP/1.1 (\d+)", text) == ["200", "200", "404"]
    assert text.index('"new_split"') < text.index('"samples"')
