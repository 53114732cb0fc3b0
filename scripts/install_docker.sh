#!/usr/bin/env bash
# install_docker.sh - make sure a Docker engine is installed and answering on this instance.
#
# Usage: install_docker.sh
#
# Idempotent: when `docker info` already answers it changes nothing. Otherwise it installs Docker with the
# first package manager it finds (apt-get, dnf, yum), starts the daemon (systemctl, else service) and waits
# until `docker info` answers. Self-contained: berth ships this file alone to instances through SSM.
#
# Environment:
#   BERTH_DOCKER_WAIT_SECONDS  how long to wait for the daemon to answer (default 60)
#
# Exit codes:
#   0  OK  Docker answers
#   11  NO_PACKAGE_MANAGER  no apt-get, dnf or yum to install Docker with
#   12  DOCKER_INSTALL_FAILED  the package manager failed to install Docker
#   13  DOCKER_DAEMON_NOT_READY  Docker was installed but its daemon never answered
set -euo pipefail

readonly EXIT_NO_PACKAGE_MANAGER=11
readonly EXIT_DOCKER_INSTALL_FAILED=12
readonly EXIT_DOCKER_DAEMON_NOT_READY=13
readonly POLL_SECONDS=2

log() {
    printf '%s\n' "$*"
}

fail() {
    local code="$1" name="$2"
    shift 2
    printf 'berth-error: %s %s\n' "$code" "$name"
    printf 'error: %s\n' "$*" >&2
    exit "$code"
}

docker_answers() {
    command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

install_with_package_manager() {
    if command -v apt-get >/dev/null 2>&1; then
        log "installing docker.io with apt-get"
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io
    elif command -v dnf >/dev/null 2>&1; then
        log "installing docker with dnf"
        dnf install -y docker
    elif command -v yum >/dev/null 2>&1; then
        log "installing docker with yum"
        yum install -y docker
    else
        fail "$EXIT_NO_PACKAGE_MANAGER" NO_PACKAGE_MANAGER \
            "found no apt-get, dnf or yum; install Docker on this instance by hand (or bake it into the AMI)" \
            "and deploy again"
    fi
}

start_daemon() {
    # A failure here is reported by the wait that follows, with the daemon's state in the message.
    if command -v systemctl >/dev/null 2>&1; then
        log "starting docker with systemctl"
        systemctl enable --now docker || log "warning: 'systemctl enable --now docker' failed"
    elif command -v service >/dev/null 2>&1; then
        log "starting docker with service"
        service docker start || log "warning: 'service docker start' failed"
    else
        log "warning: neither systemctl nor service found; waiting for something else to start docker"
    fi
}

wait_for_daemon() {
    local wait_seconds="${BERTH_DOCKER_WAIT_SECONDS:-60}"
    if ! [[ "$wait_seconds" =~ ^[0-9]+$ ]]; then
        wait_seconds=60
    fi
    local deadline=$((SECONDS + wait_seconds))
    until docker_answers; do
        if ((SECONDS >= deadline)); then
            fail "$EXIT_DOCKER_DAEMON_NOT_READY" DOCKER_DAEMON_NOT_READY \
                "docker did not answer 'docker info' within ${wait_seconds}s; check 'systemctl status docker'" \
                "and 'journalctl -u docker' on the instance"
        fi
        sleep "$POLL_SECONDS"
    done
}

main() {
    printf 'berth-step: %s\n' install-docker
    if docker_answers; then
        log "docker already installed and answering; nothing to do"
        exit 0
    fi
    if command -v docker >/dev/null 2>&1; then
        log "docker is installed but its daemon does not answer; starting it"
    else
        if ((EUID != 0)); then
            fail "$EXIT_DOCKER_INSTALL_FAILED" DOCKER_INSTALL_FAILED "docker is missing and installing it needs root;" \
                "run this script as root"
        fi
        if ! install_with_package_manager; then
            fail "$EXIT_DOCKER_INSTALL_FAILED" DOCKER_INSTALL_FAILED \
                "the package manager could not install Docker; read its output above (network, repositories," \
                "a held lock) and deploy again"
        fi
        if ! command -v docker >/dev/null 2>&1; then
            fail "$EXIT_DOCKER_INSTALL_FAILED" DOCKER_INSTALL_FAILED \
                "the package manager succeeded but no docker command is on PATH; install Docker by hand"
        fi
    fi
    start_daemon
    wait_for_daemon
    log "docker is installed and answering"
}

main "$@"
