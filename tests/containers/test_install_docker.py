"""install_docker.sh with stand-in package managers: which one it calls, and what it does when none works.

No engine needed: PATH holds only stand-ins that record their argv, plus the few tools the script uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from chalicelib.domain.exit_codes import ScriptExit
from tests.containers.support import SCRIPTS_DIR

# Tools install_docker.sh may run besides docker and the package managers.
TOOLS = ("sleep",)
WORKING_DOCKER = '#!/bin/sh\n[ "$1" = info ] && exit 0\nexit 1\n'
SILENT_DOCKER = "#!/bin/sh\nexit 1\n"


class Host:
    """A PATH with stand-in commands; every call is recorded as one line in calls.log."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "calls.log"
        self.log.touch()
        for tool in TOOLS:
            found = shutil.which(tool)
            assert found is not None
            (self.bin / tool).symlink_to(found)

    def add(self, command: str, body: str = "exit 0") -> None:
        script = self.bin / command
        script.write_text(f'#!/bin/sh\necho "{command} $*" >> "{self.log}"\n{body}\n')
        script.chmod(0o755)

    def add_installer(self, command: str, installed_docker: str = WORKING_DOCKER) -> None:
        """A package manager whose install subcommand puts a docker command on PATH."""
        docker = self.bin / "docker"
        self.add(command, f"if [ \"$1\" = install ] || [ \"$2\" = install ]; then\n"
                          f"printf '%s' '{installed_docker}' > '{docker}'\n/bin/chmod 755 '{docker}'\nfi\nexit 0")

    def add_docker(self, body: str) -> None:
        script = self.bin / "docker"
        script.write_text(body)
        script.chmod(0o755)

    def calls(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line]

    def run(self, **extra_env: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": str(self.bin), "HOME": "/root", **extra_env}
        return subprocess.run(["/bin/bash", str(SCRIPTS_DIR / "install_docker.sh")], env=env,
                              capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    if os.geteuid() != 0:
        pytest.skip("install_docker.sh installs only as root")
    return Host(tmp_path)


def test_working_docker_changes_nothing(host: Host) -> None:
    host.add_docker(WORKING_DOCKER)
    for command in ("apt-get", "dnf", "yum", "systemctl", "service"):
        host.add(command)

    result = host.run()

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert "nothing to do" in result.stdout
    assert host.calls() == []


def test_debian_installs_docker_io_with_apt_get_and_starts_it(host: Host) -> None:
    host.add_installer("apt-get")
    host.add("systemctl")

    result = host.run()

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert host.calls() == ["apt-get update", "apt-get install -y docker.io", "systemctl enable --now docker"]


def test_dnf_is_preferred_over_yum(host: Host) -> None:
    host.add_installer("dnf")
    host.add_installer("yum")
    host.add("systemctl")

    result = host.run()

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert host.calls() == ["dnf install -y docker", "systemctl enable --now docker"]


def test_yum_is_used_when_there_is_no_dnf(host: Host) -> None:
    host.add_installer("yum")
    host.add("systemctl")

    result = host.run()

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert host.calls() == ["yum install -y docker", "systemctl enable --now docker"]


def test_service_starts_docker_without_systemd(host: Host) -> None:
    host.add_installer("yum")
    host.add("service")

    result = host.run()

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert host.calls() == ["yum install -y docker", "service docker start"]


def test_no_package_manager_exits_11(host: Host) -> None:
    host.add("systemctl")

    result = host.run()

    assert result.returncode == ScriptExit.NO_PACKAGE_MANAGER
    assert "berth-error: 11 NO_PACKAGE_MANAGER" in result.stdout
    assert "install Docker on this instance by hand" in result.stderr
    assert host.calls() == []


def test_failed_install_exits_12(host: Host) -> None:
    host.add("apt-get", '[ "$1" = install ] && exit 100\nexit 0')
    host.add("systemctl")

    result = host.run()

    assert result.returncode == ScriptExit.DOCKER_INSTALL_FAILED
    assert host.calls() == ["apt-get update", "apt-get install -y docker.io"]


def test_daemon_that_never_answers_exits_13(host: Host) -> None:
    host.add_installer("dnf", installed_docker=SILENT_DOCKER)
    host.add("systemctl", "exit 1")

    result = host.run(BERTH_DOCKER_WAIT_SECONDS="1")

    assert result.returncode == ScriptExit.DOCKER_DAEMON_NOT_READY
    assert "journalctl -u docker" in result.stderr
    assert host.calls() == ["dnf install -y docker", "systemctl enable --now docker"]


def test_installed_but_stopped_docker_is_started_not_reinstalled(host: Host) -> None:
    state = host.bin.parent / "started"
    host.add_docker(f'#!/bin/sh\n[ -e "{state}" ] && exit 0\nexit 1\n')
    host.add("apt-get")
    host.add("systemctl", f"/usr/bin/touch '{state}'")

    result = host.run()

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert host.calls() == ["systemctl enable --now docker"]
