"""Exit codes of the instance scripts, and the step and failure class each one means.

The table is the contract between ``scripts/*.sh`` (which document the same codes in their header) and the
Lambdas that classify a failed command by its exit code. A test compares the two.
"""

from __future__ import annotations

from enum import Enum, StrEnum


class FailureClass(StrEnum):
    TRANSIENT = "transient"
    REMEDIABLE = "remediable"
    PERMANENT = "permanent"


class ScriptExit(int, Enum):
    OK = 0
    USAGE = 2
    DOCKER_UNAVAILABLE = 10
    NO_PACKAGE_MANAGER = 11
    DOCKER_INSTALL_FAILED = 12
    DOCKER_DAEMON_NOT_READY = 13
    REGISTRY_LOGIN_FAILED = 20
    PULL_FAILED = 21
    SECRET_UNREADABLE = 22
    ARCHITECTURE_MISMATCH = 24
    NO_SPACE = 25
    START_FAILED = 30
    PROXY_FAILED = 31
    HEALTH_FAILED_RESTORED = 40
    HEALTH_FAILED_NOT_RESTORED = 41


EXIT_MEANING: dict[ScriptExit, tuple[str, str, FailureClass]] = {
    # code: (step, what happened, failure class)
    ScriptExit.USAGE: ("configure", "bad arguments or deploy.env", FailureClass.PERMANENT),
    ScriptExit.DOCKER_UNAVAILABLE: ("docker", "docker is not installed or its daemon does not answer",
                                    FailureClass.REMEDIABLE),
    ScriptExit.NO_PACKAGE_MANAGER: ("install-docker", "no apt-get, dnf or yum to install Docker with",
                                    FailureClass.PERMANENT),
    ScriptExit.DOCKER_INSTALL_FAILED: ("install-docker", "the package manager failed to install Docker",
                                       FailureClass.TRANSIENT),
    ScriptExit.DOCKER_DAEMON_NOT_READY: ("install-docker", "Docker was installed but its daemon never answered",
                                         FailureClass.TRANSIENT),
    ScriptExit.REGISTRY_LOGIN_FAILED: ("login", "registry login failed", FailureClass.TRANSIENT),
    ScriptExit.PULL_FAILED: ("pull", "image pull failed; the running container was not touched",
                             FailureClass.TRANSIENT),
    # The instance profile may not read it, or it does not exist: retrying changes neither. The message names the
    # secret's variable and ARN, never its value.
    ScriptExit.SECRET_UNREADABLE: ("secrets", "a secret could not be read; the running container was not touched",
                                   FailureClass.PERMANENT),
    # An image of another architecture dies with `exec format error` however often it is pulled.
    ScriptExit.ARCHITECTURE_MISMATCH: ("pull", "the image is not built for this instance's architecture; the "
                                               "running container was not touched", FailureClass.PERMANENT),
    # The script pruned this container's older images before exiting: the one retry berth makes may fit.
    ScriptExit.NO_SPACE: ("pull", "no space left on device to pull or start the image; older images of the container "
                                  "were pruned", FailureClass.REMEDIABLE),
    ScriptExit.START_FAILED: ("start", "the new container failed to start; the previous one is serving",
                              FailureClass.PERMANENT),
    # A public port held by something else, or a proxy image that will not run: retrying changes neither.
    ScriptExit.PROXY_FAILED: ("switch", "the local proxy could not be started or switched; the previous container "
                                        "is serving", FailureClass.PERMANENT),
    ScriptExit.HEALTH_FAILED_RESTORED: ("health", "health check failed; the previous container is serving",
                                        FailureClass.PERMANENT),
    ScriptExit.HEALTH_FAILED_NOT_RESTORED: ("health", "health check failed; no previous container could be restored",
                                            FailureClass.PERMANENT),
}
