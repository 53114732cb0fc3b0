"""Helpers for the container engine tests: the podman session, test images, a local registry, HTTP probes.

The fixtures that use them live in conftest.py; the module docstring there explains the setup.
"""


from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO_ROOT / "scripts"
SETUP_ENGINE = Path(__file__).resolve().parent / "setup_engine.sh"
BUSYBOX = Path("/usr/bin/busybox")
IMAGE_REPO = "berth/web"
BUSYBOX_APPLETS = ("sh", "httpd", "sleep", "echo", "cat", "wget", "printf")
SERVE_COMMAND = "trap 'exit 0' TERM; httpd -f -v -p 8080 -h /www & wait"
# GET /cgi-bin/slow answers after 5 s: a request still in flight when traffic moves, even on a loaded machine
# where the candidate's start and health check take seconds.
SLOW_CGI = "#!/bin/sh\nsleep 5\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow {tag}\\n'\n"
# The proxy image is Debian's haproxy and socat with the libraries ldd names, assembled offline.
PROXY_BINARIES = (Path("/usr/sbin/haproxy"), Path("/usr/bin/socat"))
SUFFIXES = ("-berth-next", "-berth-proxy", "-berth-proxy-next", "-berth-previous")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str = "/version", timeout: float = 2.0) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path; (status, body), status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def run_script(script: str, *args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run scripts/<script> with bash as the Lambda and CodeDeploy do; stdout and stderr are kept apart."""
    return subprocess.run(
        ["bash", str(SCRIPTS_DIR / script), *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


@dataclass
class Engine:
    """The podman setup of one test session, and what the tests ask of it."""

    env: dict[str, str]
    registry: str
    proxy_image: str = ""

    def image(self, tag: str) -> str:
        return f"{self.registry}/{IMAGE_REPO}:{tag}"

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, check=check,
                              timeout=60)

    def run(self, script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_script(script, *args, env=self.env, timeout=timeout)

    def inspect(self, name: str) -> dict[str, Any] | None:
        result = self.podman("container", "inspect", name, check=False)
        return json.loads(result.stdout)[0] if result.returncode == 0 else None

    def container_names(self) -> set[str]:
        result = self.podman("ps", "-a", "--format", "{{.Names}}")
        return set(result.stdout.split())

    def pinned(self, tag: str) -> str:
        """The test image `tag` as repo@sha256:..., the form a revision's deploy.env holds."""
        self.podman("pull", "-q", self.image(tag))
        digests = self.podman("image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}",
                              self.image(tag)).stdout.split()
        return next(d for d in digests if d.startswith(f"{self.registry}/{IMAGE_REPO}@sha256:"))

    def image_exists(self, ref: str) -> bool:
        return self.podman("image", "exists", ref, check=False).returncode == 0

    def remove(self, *names: str) -> None:
        for name in names:
            self.podman("rm", "-f", "-t", "0", name, check=False)

    def service_containers(self, name: str) -> set[str]:
        """The containers of a service: NAME and those berth names after it."""
        return {n for n in self.container_names() if n == name or n in {name + s for s in SUFFIXES}}


@dataclass(frozen=True)
class Target:
    """A container name and host port that no other test uses."""

    name: str
    port: int

    def deploy_args(self, engine: Engine, tag: str, *extra: str) -> list[str]:
        return ["--image", engine.image(tag), "--name", self.name, "--port", f"{self.port}:8080",
                "--health-port", str(self.port), "--health-path", "/health", "--health-timeout", "10",
                "--health-interval", "1", "--stop-timeout", "2", *extra]


class EngineUnavailable(Exception):
    """podman or a tool the session needs is missing or does not work here; the message says which."""


@contextmanager
def engine_session(work: Path) -> Iterator[Engine]:
    """A podman session in `work`: configuration, the `docker` shim, a registry, the test images and proxy image.

    Raises EngineUnavailable with the reason when this machine cannot run it. On exit every container and image
    of the session is removed and the registry stopped.
    """
    if shutil.which("podman") is None:
        raise EngineUnavailable("podman is not installed; run tests/containers/setup_engine.sh")
    registry_port = free_port()
    conf_dir = work / "conf"
    subprocess.run(["bash", str(SETUP_ENGINE), "--no-install", "--conf-dir", str(conf_dir),
                    "--registry-port", str(registry_port)], check=True, capture_output=True)
    shim_dir = work / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "docker"
    shim.write_text('#!/bin/sh\nexec podman "$@"\n')
    shim.chmod(0o755)
    lock_dir = work / "locks"
    lock_dir.mkdir()
    env = {
        **os.environ,
        "PATH": f"{shim_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "CONTAINERS_CONF": str(conf_dir / "containers.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(conf_dir / "registries.conf"),
        "CONTAINERS_STORAGE_CONF": str(conf_dir / "storage.conf"),
        "BERTH_LOCK_DIR": str(lock_dir),
        "BERTH_STATE_DIR": str(work / "state"),
    }
    reason = engine_unusable_reason(env)
    if reason is not None:
        raise EngineUnavailable(reason)
    registry = start_registry(work, registry_port)
    session = Engine(env=env, registry=f"127.0.0.1:{registry_port}")
    try:
        build_images(session, work)
        session.env["BERTH_PROXY_IMAGE"] = session.proxy_image
        yield session
    finally:
        session.podman("rm", "-a", "-f", "-t", "0", check=False)
        session.podman("rmi", "-a", "-f", check=False)
        registry.terminate()
        try:
            registry.wait(timeout=10)
        except subprocess.TimeoutExpired:
            registry.kill()
            registry.wait()


def engine_unusable_reason(env: dict[str, str]) -> str | None:
    for tool in ("podman", "runc", "docker-registry", *(str(b) for b in PROXY_BINARIES)):
        if shutil.which(tool) is None:
            return f"{tool} is not installed; run tests/containers/setup_engine.sh"
    if not BUSYBOX.exists():
        return f"{BUSYBOX} is missing (busybox-static); run tests/containers/setup_engine.sh"
    probe = subprocess.run(["podman", "info"], env=env, capture_output=True, text=True, check=False, timeout=60)
    if probe.returncode != 0:
        return f"podman does not work here: {probe.stderr.strip()[-500:]}"
    return None


def write_rootfs(tar_path: Path, files: dict[str, str]) -> None:
    with tarfile.open(tar_path, "w") as tar:
        for directory in ("bin", "www", "www/cgi-bin", "tmp"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in BUSYBOX_APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        for path, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o755 if path.startswith("www/cgi-bin/") else 0o644
            tar.addfile(info, fileobj=io.BytesIO(data))


def build_images(engine: Engine, work: Path) -> None:
    serve = json.dumps(["/bin/sh", "-c", SERVE_COMMAND])
    images = {
        "v1": ({"www/version": "berth-test v1\n", "www/health": "ok\n",
                "www/cgi-bin/slow": SLOW_CGI.format(tag="v1")}, serve),
        "v2": ({"www/version": "berth-test v2\n", "www/health": "ok\n",
                "www/cgi-bin/slow": SLOW_CGI.format(tag="v2")}, serve),
        "broken": ({"www/version": "berth-test broken\n"},
                   json.dumps(["/bin/sh", "-c", f"echo 'broken-build: /health is missing' >&2; {SERVE_COMMAND}"])),
        "crash": ({"www/version": "berth-test crash\n"},
                  json.dumps(["/bin/sh", "-c", "echo 'crash-build: exiting at once' >&2; exit 3"])),
        "nostart": ({"www/version": "berth-test nostart\n"}, json.dumps(["/bin/not-there"])),
    }
    for tag, (files, command) in images.items():
        tar_path = work / f"rootfs-{tag}.tar"
        write_rootfs(tar_path, files)
        local = f"localhost/berth-build:{tag}"
        engine.podman("import", "--change", f"CMD {command}", "--change", "EXPOSE 8080", str(tar_path), local)
        engine.podman("push", local, engine.image(tag))
        engine.podman("rmi", local)
    engine.proxy_image = build_proxy_image(engine, work)


def build_proxy_image(engine: Engine, work: Path) -> str:
    """haproxy and socat from this machine, pushed to the registry; returns the reference pinned by digest."""
    files = set(PROXY_BINARIES)
    for binary in PROXY_BINARIES:
        listing = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
        files |= {Path(path) for path in re.findall(r"(/\S+) \(0x", listing)}
    tar_path = work / "rootfs-proxy.tar"
    with tarfile.open(tar_path, "w", dereference=True) as tar:
        for directory in ("run", "tmp"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path in sorted(files):
            tar.add(path, arcname=str(path).lstrip("/"))
    local = "localhost/berth-build:proxy"
    engine.podman("import", "--change", 'CMD ["haproxy", "-v"]', str(tar_path), local)
    digest_file = work / "proxy.digest"
    repository = f"{engine.registry}/berth/proxy"
    engine.podman("push", "--digestfile", str(digest_file), local, f"{repository}:test")
    engine.podman("rmi", local)
    return f"{repository}@{digest_file.read_text().strip()}"


@dataclass(frozen=True)
class Answer:
    at: float
    status: int
    body: str


@dataclass
class Prober:
    """GETs http://127.0.0.1:PORT/PATH every 50 ms from a thread while in a `with` block; keeps every answer."""

    port: int
    path: str = "/version"
    period: float = 0.05
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Prober:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            status, body = http_get(self.port, self.path, timeout=2.0)
            self.answers.append(Answer(time.monotonic(), status, body))
            next_at += self.period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def failed(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.status != 200]

    def bodies(self) -> set[str]:
        return {answer.body for answer in self.answers}

    def longest_outage(self) -> float:
        """Seconds from the last good answer before a failure to the next good one (or the last answer); 0 if none
        failed."""
        longest, last_good, failing_since = 0.0, None, None
        for answer in self.answers:
            if answer.status != 200:
                failing_since = answer.at if failing_since is None else failing_since
                continue
            if failing_since is not None:
                longest = max(longest, answer.at - (failing_since if last_good is None else last_good))
                failing_since = None
            last_good = answer.at
        if failing_since is not None:
            longest = max(longest, self.answers[-1].at - (failing_since if last_good is None else last_good))
        return longest


def start_registry(work: Path, port: int) -> subprocess.Popen[bytes]:
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {work / 'registry-data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (work / "registry.log").open("wb")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if http_get(port, "/v2/")[0] == 200:
            return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"docker-registry did not start: {(work / 'registry.log').read_text()[-1000:]}")
