"""Helpers for the container engine tests: the podman session, test images, a local registry, HTTP probes.

The fixtures that use them live in conftest.py; the module docstring there explains the setup.
"""


from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO_ROOT / "scripts"
SETUP_ENGINE = Path(__file__).resolve().parent / "setup_engine.sh"
BUSYBOX = Path("/usr/bin/busybox")
IMAGE_REPO = "berth/web"
BUSYBOX_APPLETS = ("sh", "httpd", "sleep", "echo", "cat", "wget")
SERVE_COMMAND = "trap 'exit 0' TERM; httpd -f -v -p 8080 -h /www & wait"


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

    def image(self, tag: str) -> str:
        return f"{self.registry}/{IMAGE_REPO}:{tag}"

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, check=check,
                              timeout=60)

    def run(self, script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_script(script, *args, env=self.env, timeout=timeout)

    def inspect(self, name: str) -> dict | None:
        result = self.podman("container", "inspect", name, check=False)
        return json.loads(result.stdout)[0] if result.returncode == 0 else None

    def container_names(self) -> set[str]:
        result = self.podman("ps", "-a", "--format", "{{.Names}}")
        return set(result.stdout.split())

    def image_exists(self, ref: str) -> bool:
        return self.podman("image", "exists", ref, check=False).returncode == 0

    def remove(self, *names: str) -> None:
        for name in names:
            self.podman("rm", "-f", "-t", "0", name, check=False)


@dataclass(frozen=True)
class Target:
    """A container name and host port that no other test uses."""

    name: str
    port: int

    def deploy_args(self, engine: Engine, tag: str, *extra: str) -> list[str]:
        return ["--image", engine.image(tag), "--name", self.name, "--port", f"{self.port}:8080",
                "--health-port", str(self.port), "--health-path", "/health", "--health-timeout", "10",
                "--health-interval", "1", "--stop-timeout", "2", *extra]


def engine_unusable_reason(env: dict[str, str]) -> str | None:
    for tool in ("podman", "runc", "docker-registry"):
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
        for directory in ("bin", "www", "tmp"):
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
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, fileobj=io.BytesIO(data))


def build_images(engine: Engine, work: Path) -> None:
    serve = json.dumps(["/bin/sh", "-c", SERVE_COMMAND])
    images = {
        "v1": ({"www/version": "berth-test v1\n", "www/health": "ok\n"}, serve),
        "v2": ({"www/version": "berth-test v2\n", "www/health": "ok\n"}, serve),
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
