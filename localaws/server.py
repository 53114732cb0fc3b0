"""A moto server with the extensions installed and the control endpoint mounted.

``python -m localaws serve --port 0`` prints ``endpoint=http://HOST:PORT`` once it listens, then serves
until SIGTERM or SIGINT, when it shuts the listener down and exits 0. Everything runs in this one
process (moto's threaded werkzeug server), so stopping it leaves nothing behind.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from .control_api import with_control
from .patching import install


class LocalAwsServer(ThreadedMotoServer):
    """moto's ``ThreadedMotoServer`` serving the control endpoint too."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        install()
        super().__init__(ip_address=ip_address, port=port, verbose=False)

    def _server_entry(self) -> None:
        app = with_control(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


def serve(host: str, port: int, run_commands: bool = False, log_requests: bool = False) -> int:
    stop = threading.Event()
    # werkzeug logs every request to stderr; a parent that never reads the pipe would block the server.
    logging.getLogger("werkzeug").setLevel(logging.INFO if log_requests else logging.WARNING)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = LocalAwsServer(host, port)
    server.start()
    if run_commands:
        from . import local_runner

        local_runner.enable()
    print(f"endpoint={server.endpoint}", flush=True)
    while not stop.wait(0.2):
        pass
    server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localaws", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run a moto server with the localaws extensions")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve_parser.add_argument(
        "--run-commands",
        action="store_true",
        help="run AWS-RunShellScript commands for real on this machine (local mode; see localaws.local_runner)",
    )
    serve_parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    return serve(args.host, args.port, args.run_commands, args.log_requests)


if __name__ == "__main__":
    sys.exit(main())
