"""`berth ui`: a dashboard on a loopback port that calls berth's REST API with the user's own credentials.

Like `kubectl proxy`: the browser talks to this process only; each `/api/...` call it proxies is signed here with
`client.Api` (botocore's SigV4 signer, as every other `berth` command), and the answer goes back as a fresh JSON
response: no header of the API's and none of the signature ever reaches the browser.

What guards it, since anything on the machine (or a web page the user opens) can reach a loopback port:
- it binds a loopback address only, and answers only requests whose Host is that address or `localhost` with its
  port (a DNS-rebound name is refused);
- the page and `/api` need the run's access token: in the URL printed at start, then in an HttpOnly, SameSite=Strict
  cookie (another local user or a web page cannot read the page or the API's answers);
- a call that changes something (redeploy, rollback, cancel) also needs the page's CSRF token in `X-Berth-Csrf` and
  an Origin of this server, and is a POST to one of those three routes; a GET reaches only the read routes the page
  uses (targets, one target, deployments, one deployment): `GET /targets/{name}/logs`, which sends a command, is not
  one of them.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

from berth_cli.client import Api, ApiError, CliError

DEFAULT_PORT = 8001
MAX_BODY = 64 * 1024
COOKIE = "berth_ui_{port}"   # cookies are per host, not per port: two dashboards must not share one
CSRF_HEADER = "X-Berth-Csrf"
_SEGMENT = r"[^/]+"
READS = tuple(re.compile(f"^{path}$") for path in (
    "/targets", f"/targets/{_SEGMENT}", f"/targets/{_SEGMENT}/deployments", "/deployments",
    f"/deployments/{_SEGMENT}"))
WRITES = tuple(re.compile(f"^{path}$") for path in (
    f"/targets/{_SEGMENT}/deployments", f"/targets/{_SEGMENT}/rollback", f"/deployments/{_SEGMENT}/cancel"))
STATIC = {"/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/static/style.css": ("style.css", "text/css; charset=utf-8")}
# The page runs only its own script and style and talks only to this server.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                  "X-Frame-Options": "DENY", "Cross-Origin-Resource-Policy": "same-origin"}


def loopback_address(address: str) -> str:
    """The IPv4 loopback address to bind (`localhost` is 127.0.0.1); anything else is refused."""
    if address == "localhost":
        return "127.0.0.1"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        parsed = None
    if parsed is None or parsed.version != 4 or not parsed.is_loopback:
        raise CliError(f"berth ui serves on a loopback address only (127.0.0.1, localhost), not {address!r}: "
                       "its page acts with your credentials")
    return str(parsed)


def api_path(path: str, method: str) -> bool:
    """Whether the page may call `path` (the part after /api, without the query) with `method`."""
    segments = path.split("/")[1:]
    if any(unquote(segment) in ("", ".", "..") or "/" in unquote(segment) for segment in segments):
        return False
    routes = READS if method == "GET" else WRITES if method == "POST" else ()
    return any(route.match(path) for route in routes)


class UiServer(ThreadingHTTPServer):
    """The dashboard's HTTP server: its API client, this run's tokens and the Host values it answers."""

    daemon_threads = True

    def __init__(self, api: Api, address: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 refresh_seconds: float = 3.0, log: TextIO | None = None) -> None:
        address = loopback_address(address)
        super().__init__((address, port), UiHandler)
        self.api = api
        self.refresh_seconds = refresh_seconds
        self.access_token = secrets.token_urlsafe(32)
        self.csrf_token = secrets.token_urlsafe(32)
        self.log = log
        bound = self.server_address[1]
        self.hosts = {f"{address}:{bound}", f"localhost:{bound}"}
        self.origins = {f"http://{host}" for host in self.hosts}
        self.url = f"http://{address}:{bound}/"
        self.cookie = COOKIE.format(port=bound)

    @property
    def login_url(self) -> str:
        """The URL to open: it carries the access token once; the page then keeps it in a cookie."""
        return f"{self.url}?token={self.access_token}"


class UiHandler(BaseHTTPRequestHandler):
    server: UiServer
    server_version = "berth-ui"
    sys_version = ""

    def _handle(self) -> None:
        if self.headers.get("Host") not in self.server.hosts:
            return self._error(HTTPStatus.FORBIDDEN, "HostNotAllowed", "this server answers only "
                               f"{' or '.join(sorted(self.server.hosts))}")
        url = urlsplit(self.path)
        if url.path.startswith("/api/"):
            return self._proxy(url.path.removeprefix("/api"), url.query)
        if self.command != "GET":
            return self._error(HTTPStatus.METHOD_NOT_ALLOWED, "MethodNotAllowed", f"{self.command} {url.path}")
        if url.path == "/":
            return self._page(url.query)
        if url.path in STATIC:
            name, kind = STATIC[url.path]
            return self._send(HTTPStatus.OK, _asset(name).encode(), kind)
        return self._error(HTTPStatus.NOT_FOUND, "NotFound", url.path)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def _page(self, query: str) -> None:
        given = dict(parse_qsl(query)).get("token")
        if given is not None and hmac.compare_digest(given.encode(), self.server.access_token.encode()):
            # Keep the token in a cookie and take it out of the address bar (and of the history).
            cookie = f"{self.server.cookie}={self.server.access_token}; HttpOnly; SameSite=Strict; Path=/"
            return self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})
        if not self._authorized():
            return self._send(HTTPStatus.UNAUTHORIZED, b"open the URL `berth ui` printed: it carries this run's "
                              b"access token\n", "text/plain; charset=utf-8")
        page = _asset("index.html").replace("{{csrf}}", self.server.csrf_token).replace(
            "{{refresh}}", f"{self.server.refresh_seconds:g}")
        self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8", {"Content-Security-Policy": CSP})

    def _proxy(self, path: str, query: str) -> None:
        if not self._authorized():
            return self._error(HTTPStatus.UNAUTHORIZED, "NotAuthorized", "no access token: open the URL "
                               "`berth ui` printed")
        if not api_path(path, self.command):
            return self._error(HTTPStatus.FORBIDDEN, "PathNotAllowed", f"berth ui does not proxy {self.command} "
                               f"/api{path}")
        body: dict[str, Any] | None = None
        if self.command == "POST":
            refusal = self._cross_site()
            if refusal:
                return self._error(HTTPStatus.FORBIDDEN, "CrossSiteRefused", refusal)
            try:
                body = self._json_body()
            except ValueError as exc:
                return self._error(HTTPStatus.BAD_REQUEST, "InvalidRequest", str(exc))
        try:
            answer = self.server.api.call(self.command, path, body, dict(parse_qsl(query)))
        except ApiError as exc:
            return self._json(exc.status, {"error": {"code": exc.code or "ApiError", "message": exc.message,
                                                     "field": exc.field}})
        except CliError as exc:
            return self._error(HTTPStatus.BAD_GATEWAY, "ApiUnreachable", str(exc))
        self._json(HTTPStatus.OK, answer)

    def _authorized(self) -> bool:
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie") or "")
        except CookieError:  # a malformed Cookie header carries no token
            return False
        given = cookie.get(self.server.cookie)
        return given is not None and hmac.compare_digest(given.value.encode(), self.server.access_token.encode())

    def _cross_site(self) -> str | None:
        """Why a state-changing call is refused as not coming from the page, or None."""
        token = self.headers.get(CSRF_HEADER) or ""
        if not hmac.compare_digest(token.encode(), self.server.csrf_token.encode()):
            return f"a state-changing call needs the page's {CSRF_HEADER} token"
        origin = self.headers.get("Origin")
        if origin not in self.server.origins:
            return f"Origin {origin!r} is not this server"
        if self.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
            return "the call does not come from this server's page"
        return None

    def _json_body(self) -> dict[str, Any] | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ValueError("Content-Length is not a number") from None
        if length < 0 or length > MAX_BODY:
            raise ValueError(f"the body must be at most {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            raise ValueError("the body must be application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            raise ValueError("the body is not JSON") from None
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return body

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": {"code": code, "message": message}})

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, data: bytes, kind: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**COMMON_HEADERS, "Content-Type": kind, "Content-Length": str(len(data)),
                            **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log is not None:
            # The request line without its query: the first one carries the access token.
            path = getattr(self, "path", "")       # unset when the request line could not be read
            line = (format % args).replace(path, urlsplit(path).path) if path else format % args
            print(f"berth ui: {line}", file=self.server.log, flush=True)


def _asset(name: str) -> str:
    return (resources.files("berth_cli") / "ui_static" / name).read_text(encoding="utf-8")


def serve(api: Api, address: str, port: int, refresh_seconds: float, out: TextIO, err: TextIO) -> int:
    """`berth ui`: serve until interrupted."""
    try:
        server = UiServer(api, address, port, refresh_seconds, log=err)
    except OSError as exc:
        raise CliError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    with server:
        print(f"berth ui on {server.url} (loopback only; Ctrl-C stops it). Open:\n  {server.login_url}",
              file=out, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("berth ui: stopped", file=err)
    return 0

