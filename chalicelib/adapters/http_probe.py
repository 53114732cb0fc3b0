"""An HTTP GET with a hard deadline, for lifecycle hook checks. Standard library only: no extra cold-start cost.

A socket timeout bounds each read, not the request: an endpoint that sends a byte a second would hold a 2 s probe for
as long as it likes, and the hook's Lambda could time out before it reports to CodeDeploy. So the request runs in a
worker thread and the caller waits for it until the deadline; past it, the caller shuts the request's sockets down
(which ends the worker's blocked read) and answers a timeout. The deadline covers name resolution, connecting, TLS,
redirects, the headers and the body.
"""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class ProbeResult:
    status: int | None
    body: str
    error: str = ""


def probe(url: str, timeout_seconds: float) -> ProbeResult:
    sockets: list[socket.socket] = []
    answer: list[ProbeResult] = []
    worker = threading.Thread(target=lambda: answer.append(_get(url, timeout_seconds, sockets)),
                              name="berth-probe", daemon=True)
    worker.start()
    worker.join(timeout_seconds)
    if answer:
        return answer[0]
    for sock in list(sockets):       # end the worker's blocked read now rather than at its next socket timeout
        _shut(sock)
    return ProbeResult(None, "", f"TimeoutError: no complete answer within {timeout_seconds:g} s (the deadline covers "
                                 "connecting, the headers and the body)")


def _get(url: str, timeout_seconds: float, sockets: list[socket.socket]) -> ProbeResult:
    request = urllib.request.Request(url, headers={"User-Agent": "berth-lifecycle-hook"})  # noqa: S310
    opener = urllib.request.build_opener(_Http(sockets), _Https(sockets))
    try:
        with opener.open(request, timeout=timeout_seconds) as response:  # http(s) only: the spec's pattern
            return ProbeResult(response.status, response.read(MAX_BODY).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        with exc:
            return ProbeResult(exc.code, exc.read(MAX_BODY).decode("utf-8", "replace"))
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError, ValueError) as exc:
        return ProbeResult(None, "", f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")


def _shut(sock: socket.socket) -> None:
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)   # the plain socket's, under TLS too: no TLS state touched
    except OSError:
        pass


def _tracked(base: type[http.client.HTTPConnection], sockets: list[socket.socket]) -> Any:
    class Tracked(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            super().connect()
            sockets.append(self.sock)

    return Tracked


class _Http(urllib.request.HTTPHandler):
    def __init__(self, sockets: list[socket.socket]) -> None:
        super().__init__()
        self._connection = _tracked(http.client.HTTPConnection, sockets)

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req)


class _Https(urllib.request.HTTPSHandler):
    def __init__(self, sockets: list[socket.socket]) -> None:
        super().__init__()
        self._connection = _tracked(http.client.HTTPSConnection, sockets)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req, context=self._context)  # type: ignore[attr-defined]
