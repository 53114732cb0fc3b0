#!/usr/bin/env bash
# setup_engine.sh - prepare this machine for tests/containers: podman and the configuration it needs here.
#
# Usage: setup_engine.sh [--no-install] [--conf-dir DIR] [--registry-port PORT]
#
# Idempotent. Installs podman, runc, busybox-static, docker-registry, shellcheck, curl and catatonit (podman's
# `--init` process) with apt-get when one is missing, then writes into DIR (default /etc/berth-tests):
#   containers.conf   default_ulimits the sandbox allows, runc and cgroupfs (crun refuses the hybrid cgroups)
#   registries.conf   marks the test registry 127.0.0.1:PORT (default 5000) insecure (plain HTTP)
#   storage.conf      a private image and container store under DIR, so tests never touch the host's store
# Use them with CONTAINERS_CONF, CONTAINERS_REGISTRIES_CONF and CONTAINERS_STORAGE_CONF.
# The tests' conftest.py calls this with --no-install and a temporary DIR.
#
# Exit codes:
#   0  OK  ready
#   1  -  a package could not be installed
#   2  -  bad arguments
set -euo pipefail

readonly PACKAGES=(podman runc busybox-static docker-registry shellcheck curl catatonit)

conf_dir="/etc/berth-tests"
registry_port="5000"
install=1

missing_packages() {
    local package
    for package in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$package"
        fi
    done
}

install_packages() {
    local missing=()
    command -v dpkg-query >/dev/null 2>&1 || {
        printf 'error: this script installs with apt-get; install %s by hand\n' "${PACKAGES[*]}" >&2
        exit 1
    }
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        printf 'packages already installed: %s\n' "${PACKAGES[*]}"
        return 0
    fi
    printf 'installing: %s\n' "${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

write_configs() {
    mkdir -p "$conf_dir"
    cat >"${conf_dir}/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
    cat >"${conf_dir}/registries.conf" <<CONF
unqualified-search-registries = []

[[registry]]
location = "127.0.0.1:${registry_port}"
insecure = true
CONF
    cat >"${conf_dir}/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "${conf_dir}/run"
graphroot = "${conf_dir}/storage"
CONF
    printf 'wrote %s/{containers,registries,storage}.conf\n' "$conf_dir"
}

main() {
    while (($# > 0)); do
        case "$1" in
            --no-install) install=0; shift ;;
            --conf-dir) conf_dir="${2:?--conf-dir needs a value}"; shift 2 ;;
            --registry-port) registry_port="${2:?--registry-port needs a value}"; shift 2 ;;
            *) printf 'usage: setup_engine.sh [--no-install] [--conf-dir DIR] [--registry-port PORT]\n' >&2; exit 2 ;;
        esac
    done
    [[ "$registry_port" =~ ^[0-9]+$ ]] || { printf 'error: bad --registry-port\n' >&2; exit 2; }
    if ((install == 1)); then
        install_packages
    fi
    write_configs
}

main "$@"
