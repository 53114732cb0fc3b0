"""The `berth` CLI's front for tests: the in-process app behind a loopback HTTP server that records every request, so
a test can check each SigV4 signature with botocore's own signer (the `front` fixture, tests/functional/conftest.py)."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from chalice.test import Client

from app import app
from berth_cli.main import main
from tests.conftest import World

STAGE_PREFIX = "/api"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Front:
    url: str
    seen: list[Seen]
    world: World


@contextmanager
def serving(aws: World, extra_headers: dict[str, str] | None = None) -> Iterator[Front]:
    """API Gateway stand-in: http://127.0.0.1:PORT/api/... → the app through chalice's test client. `extra_headers`
    go on every answer (what API Gateway itself may add)."""
    seen: list[Seen] = []

    class Handler(BaseHTTPRequestHandler):
        def handle_one(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            with Client(app, stage_name="test") as client:
                reply = client.http.request(self.command, self.path.removeprefix(STAGE_PREFIX),
                                            headers=dict(self.headers.items()), body=body)
            self.send_response(reply.status_code)
            for name, value in [*reply.headers.items(), *(extra_headers or {}).items()]:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = handle_one

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Front(f"http://127.0.0.1:{server.server_address[1]}{STAGE_PREFIX}", seen, aws)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def berth(front: Front, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*args, "--url", front.url], out=out, err=err, sleep=lambda _: None)
    return code, out.getvalue(), err.getvalue()


CLI_KEY, CLI_SECRET, CLI_TOKEN = "AKIDBERTHCLITEST", "cli-secret", "cli-session-token"


def verify_sigv4(seen: Seen, url_base: str, secret: str = CLI_SECRET) -> bool:
    """Recompute the signature of what the server received with botocore's SigV4Auth, as API Gateway would."""
    match = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                         r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", seen.headers["Authorization"])
    assert match, seen.headers["Authorization"]
    access_key, _, region, service, signed, signature = match.groups()
    assert service == "execute-api"
    headers = {name: value for name, value in seen.headers.items() if name.lower() in signed.split(";")}
    request = AWSRequest(method=seen.method, url=url_base + seen.path, data=seen.body, headers=headers)
    request.context["timestamp"] = seen.headers["X-Amz-Date"]
    token = seen.headers.get("X-Amz-Security-Token")
    signer = SigV4Auth(Credentials(access_key, secret, token), service, region)
    assert signer.signed_headers(signer.headers_to_sign(request)) == signed
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return bool(expected == signature)
