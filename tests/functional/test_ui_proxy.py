"""`berth ui`'s server: what it serves and proxies, and what it refuses. The API behind it is the app, in process,
behind a loopback HTTP server that records each request, so a test can check the signature botocore's signer put on
it."""

from __future__ import annotations

import http.client
import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials
from chalice.test import Client

from app import app
from berth_cli.client import Api, CliError
from berth_cli.main import main
from berth_cli.ui import UiServer, api_path, loopback_address
from tests.api.support import deployed, push_image
from tests.conftest import World
from tests.functional.cli_front import STAGE_PREFIX, Seen, serving, verify_sigv4

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
KEY, SECRET, TOKEN = "AKIDBERTHUITEST00000", "ui-secret-key-material", "ui-session-token-material"


@dataclass
class Ui:
    server: UiServer
    seen: list[Seen]
    world: World
    upstream: str

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                host: str | None = None, cookie: bool = True) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Host": f"127.0.0.1:{self.port}" if host is None else host, **(headers or {})}
        if cookie:
            sent["Cookie"] = f"berth_ui_{self.port}={self.server.access_token}"
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        answer = response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
        connection.close()
        return answer

    def post(self, path: str, body: Any = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
        same = {"Origin": f"http://127.0.0.1:{self.port}", "X-Berth-Csrf": self.server.csrf_token}
        return self.request("POST", path, body if body is not None else {}, {**same, **headers})


@pytest.fixture
def ui(aws: World) -> Iterator[Ui]:
    # What API Gateway may add to an answer; none of it may reach the browser.
    with serving(aws, {"x-amzn-RequestId": "req-1", "X-Amz-Apigw-Id": "apigw-1"}) as front:
        server = UiServer(Api(front.url, "us-east-1", Credentials(KEY, SECRET, TOKEN)), port=0, refresh_seconds=1)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Ui(server, front.seen, aws, front.url)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


def signature_holds(seen: Seen, base: str) -> bool:
    """Recompute the SigV4 signature of what the API received, as API Gateway would (cli_front.verify_sigv4)."""
    assert f"Credential={KEY}/" in seen.headers["Authorization"] and "/us-east-1/execute-api/" in seen.headers[
        "Authorization"]
    return verify_sigv4(seen, base.removesuffix(STAGE_PREFIX), secret=SECRET)


def no_credentials(headers: dict[str, str], body: bytes) -> None:
    assert not [name for name in headers if name == "authorization" or name.startswith(("x-amz", "x-amzn"))], headers
    for secret in (KEY, SECRET, TOKEN, "AWS4-HMAC-SHA256", "Signature="):
        assert secret.encode() not in body


# Serving the page ---------------------------------------------------------------------------------------------------

def test_the_printed_url_sets_an_http_only_cookie_and_the_page_embeds_the_csrf_token(ui: Ui) -> None:
    status, headers, _ = ui.request("GET", f"/?token={ui.server.access_token}", cookie=False)
    assert status == 303 and headers["location"] == "/"
    assert headers["set-cookie"] == f"berth_ui_{ui.port}={ui.server.access_token}; HttpOnly; SameSite=Strict; Path=/"

    status, headers, page = ui.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert f'<meta name="berth-csrf" content="{ui.server.csrf_token}">'.encode() in page
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert ui.server.access_token.encode() not in page
    for asset, kind in (("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")):
        status, headers, _ = ui.request("GET", asset)
        assert status == 200 and headers["content-type"].startswith(kind)


@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_the_page_needs_the_run_s_access_token(ui: Ui, token: str | None) -> None:
    path = "/" if token is None else f"/?token={token}"
    status, headers, body = ui.request("GET", path, cookie=False)
    assert status == 401 and "set-cookie" not in headers
    assert ui.server.csrf_token.encode() not in body
    status, _, body = ui.request("GET", "/", headers={"Cookie": f"berth_ui_{ui.port}=wrong"}, cookie=False)
    assert status == 401 and ui.server.csrf_token.encode() not in body
    # Cookies are per host, not per port: another dashboard's cookie is not this one's.
    other = f"berth_ui_{ui.port + 1}={ui.server.access_token}"
    assert ui.request("GET", "/", headers={"Cookie": other}, cookie=False)[0] == 401


def test_the_api_needs_the_access_cookie_and_a_malformed_cookie_is_no_token(ui: Ui) -> None:
    assert ui.request("GET", "/api/targets", cookie=False)[0] == 401
    assert ui.request("GET", "/api/targets", headers={"Cookie": f'berth_ui_{ui.port}="\\'}, cookie=False)[0] == 401
    assert ui.seen == []


# Proxying -----------------------------------------------------------------------------------------------------------

def test_reads_are_signed_with_the_user_s_credentials_and_no_credential_reaches_the_browser(ui: Ui) -> None:
    deployed(ui.world, instances=2)

    for path in ("/api/targets", "/api/targets/web", "/api/targets/web/deployments?limit=5",
                 "/api/deployments?limit=5"):
        status, headers, body = ui.request("GET", path)
        assert status == 200, body
        no_credentials(headers, body)
        assert headers["content-type"] == "application/json" and headers["cache-control"] == "no-store"
    target = json.loads(ui.request("GET", "/api/targets/web")[2])
    assert target["current_revision"]["image"].endswith("/web:v1")
    assert [instance["behind"] for instance in target["instances"]] == [False, False]

    assert [(seen.method, seen.path) for seen in ui.seen] == [
        ("GET", "/api/targets"), ("GET", "/api/targets/web"), ("GET", "/api/targets/web/deployments?limit=5"),
        ("GET", "/api/deployments?limit=5"), ("GET", "/api/targets/web")]
    assert all(signature_holds(seen, ui.upstream) for seen in ui.seen)
    assert all(seen.headers["X-Amz-Security-Token"] == TOKEN for seen in ui.seen)
    assert not any("Cookie" in seen.headers or ui.server.access_token in json.dumps(seen.headers) for seen in ui.seen)


def test_a_rollback_from_the_page_reaches_the_api_signed_and_is_recorded(ui: Ui) -> None:
    deployed(ui.world, instances=1)
    push_image(ui.world, "web", "v2")
    with Client(app, stage_name="test") as client:
        started = client.http.post("/targets/web/deployments", headers={"content-type": "application/json"},
                                   body=json.dumps({"image": ui.world.image_uri("web", "v2")}))
        assert started.status_code == 202
        deployment_id = json.loads(started.body)["deployment_id"]
        for _ in range(10):
            if json.loads(client.http.get(f"/deployments/{deployment_id}").body)["final"]:
                break

    status, headers, body = ui.post("/api/targets/web/rollback", {"reason": "v2 is slow"})

    assert status == 200, body
    no_credentials(headers, body)
    rollback = json.loads(body)
    assert rollback["trigger"] == "rollback" and rollback["revision"]["image"].endswith("/web:v1")
    recorded = json.loads(ui.request("GET", f"/api/deployments/{rollback['deployment_id']}")[2])
    assert recorded["trigger"] == "rollback"
    sent = ui.seen[-2]
    assert (sent.method, sent.path, json.loads(sent.body)) == ("POST", "/api/targets/web/rollback",
                                                              {"reason": "v2 is slow"})
    assert signature_holds(sent, ui.upstream)
    assert "X-Berth-Csrf" not in sent.headers and "Origin" not in sent.headers


def test_an_api_refusal_comes_back_with_its_status_and_error_and_nothing_else(ui: Ui) -> None:
    status, headers, body = ui.request("GET", "/api/targets/nothing-here")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "TargetNotFound"
    no_credentials(headers, body)
    status, _, body = ui.post("/api/targets/nothing-here/rollback")
    assert status == 404 and json.loads(body)["error"]["code"] == "TargetNotFound"


def test_an_api_that_cannot_be_reached_is_a_502_naming_it(aws: World) -> None:
    server = UiServer(Api("http://127.0.0.1:9/api", "us-east-1", Credentials(KEY, SECRET, TOKEN)), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ui = Ui(server, [], aws, "")
        status, headers, body = ui.request("GET", "/api/targets")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert status == 502 and json.loads(body)["error"]["code"] == "ApiUnreachable"
    no_credentials(headers, body)


# Refusals -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1.nip.io:{port}", "127.0.0.1", "localhost",
                                  "127.0.0.1:1", "[::1]:{port}", ""])
def test_a_host_other_than_the_loopback_address_and_port_is_refused(ui: Ui, host: str) -> None:
    """A DNS-rebound name resolves to 127.0.0.1 but carries its own Host."""
    for method, path in (("GET", "/"), ("GET", "/api/targets"), ("POST", "/api/targets/web/rollback")):
        status, _, body = ui.request(method, path, {} if method == "POST" else None, host=host.format(port=ui.port),
                                     headers={"Origin": f"http://127.0.0.1:{ui.port}",
                                              "X-Berth-Csrf": ui.server.csrf_token})
        assert status == 403 and json.loads(body)["error"]["code"] == "HostNotAllowed"
        assert ui.server.csrf_token.encode() not in body
    assert ui.seen == []


def test_localhost_with_the_port_is_answered(ui: Ui) -> None:
    assert ui.request("GET", "/api/targets", host=f"localhost:{ui.port}")[0] == 200


@pytest.mark.parametrize("headers", [
    {"X-Berth-Csrf": None},
    {"X-Berth-Csrf": "not-the-token"},
    {"X-Berth-Csrf": ""},
    {"Origin": None},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:1"},
    {"Sec-Fetch-Site": "cross-site"},
])
def test_a_state_changing_call_without_the_token_or_from_another_origin_is_refused(
        ui: Ui, headers: dict[str, str | None]) -> None:
    deployed(ui.world, instances=1)
    sent = {"Origin": f"http://127.0.0.1:{ui.port}", "X-Berth-Csrf": ui.server.csrf_token}
    sent.update(headers)  # type: ignore[arg-type]
    before = len(ui.seen)

    status, _, body = ui.request("POST", "/api/targets/web/rollback", {},
                                 {name: value for name, value in sent.items() if value is not None})

    assert status == 403 and json.loads(body)["error"]["code"] == "CrossSiteRefused"
    assert len(ui.seen) == before


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/targets/web/logs"),                 # sends a command: not something a page's poll may do
    ("GET", "/api/targets/web/logs/abc"),
    ("GET", "/api/targets/web/exec/abc"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/targets/web/deployments/extra"),
    ("GET", "/api/targets/%2E%2E"),
    ("GET", "/api/targets/.."),
    ("GET", "/api/targets/a%2Fb"),
    ("GET", "/api/targets//deployments"),
    ("POST", "/api/targets/web/exec"),
    ("POST", "/api/targets/web/freeze"),
    ("POST", "/api/targets/web/sync"),
    ("POST", "/api/targets"),
    ("POST", "/api/deployments/d-1"),
    ("PUT", "/api/targets/web"),
    ("DELETE", "/api/targets/web"),
    ("PATCH", "/api/targets/web"),
])
def test_only_the_page_s_routes_are_proxied(ui: Ui, method: str, path: str) -> None:
    headers = {"Origin": f"http://127.0.0.1:{ui.port}", "X-Berth-Csrf": ui.server.csrf_token}
    status, _, body = ui.request(method, path, {} if method != "GET" else None, headers)
    assert status == 403 and json.loads(body)["error"]["code"] == "PathNotAllowed"
    assert ui.seen == []


@pytest.mark.parametrize(("body", "kind"), [(b"[1]", "application/json"), (b"{", "application/json"),
                                            (b"reason=x", "application/x-www-form-urlencoded"),
                                            (b"{}", "text/plain")])
def test_a_post_body_must_be_a_json_object(ui: Ui, body: bytes, kind: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=30)
    connection.request("POST", "/api/targets/web/rollback", body=body, headers={
        "Host": f"127.0.0.1:{ui.port}", "Cookie": f"berth_ui_{ui.port}={ui.server.access_token}", "Content-Type": kind,
        "Origin": f"http://127.0.0.1:{ui.port}", "X-Berth-Csrf": ui.server.csrf_token})
    response = connection.getresponse()
    assert response.status == 400 and json.loads(response.read())["error"]["code"] == "InvalidRequest"
    connection.close()
    assert ui.seen == []


def test_api_path_allows_the_page_s_routes_only() -> None:
    assert api_path("/targets/web%20x/rollback", "POST")
    assert api_path("/deployments/d-1/cancel", "POST")
    assert api_path("/targets/web/deployments", "POST") and api_path("/targets/web/deployments", "GET")
    assert not api_path("/targets/web/rollback", "GET")
    assert not api_path("/deployments/d-1/cancel", "DELETE")


# Binding ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.10", "::", "::1", "example.com", "", "127.0.0.1 "])
def test_a_non_loopback_address_is_refused(address: str) -> None:
    with pytest.raises(CliError, match="loopback address only"):
        loopback_address(address)


def test_loopback_addresses_are_taken() -> None:
    assert loopback_address("localhost") == "127.0.0.1"
    assert loopback_address("127.0.0.2") == "127.0.0.2"


def test_berth_ui_refuses_a_non_loopback_bind_before_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", KEY), ("AWS_SECRET_ACCESS_KEY", SECRET)):
        monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    code = main(["ui", "--address", "0.0.0.0", "--url", "http://127.0.0.1:9/api"], out=out, err=err)
    assert code == 1
    assert "loopback address only" in err.getvalue() and out.getvalue() == ""


def test_the_server_listens_on_the_loopback_address_only(ui: Ui) -> None:
    assert ui.server.server_address[0] == "127.0.0.1"
    assert ui.server.hosts == {f"127.0.0.1:{ui.port}", f"localhost:{ui.port}"}


def test_berth_ui_prints_the_url_to_open_serves_it_and_stops_on_ctrl_c() -> None:
    import os
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
           "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    process = subprocess.Popen([sys.executable, "-m", "berth_cli.main", "ui", "--port", "0", "--url",
                                "http://127.0.0.1:9/api"], env=env, cwd=Path(__file__).resolve().parents[2], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    try:
        assert process.stdout.readline().startswith("berth ui on http://127.0.0.1:")
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{40,}", url), url
        with pytest.raises(urllib.error.HTTPError) as redirected:      # urllib follows the 303 without the cookie
            urllib.request.urlopen(url, timeout=30)
        assert redirected.value.code == 401
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        logged = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == 0
    assert "token=" not in logged and "GET /?" not in logged and "GET / " in logged
