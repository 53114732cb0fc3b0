#!/usr/bin/env bash
# stop_container.sh - stop and remove the berth-managed container, tolerantly.
#
# Usage: stop_container.sh (--name NAME | --config FILE) [--stop-timeout SECS]
#
# CodeDeploy's ApplicationStop runs the PREVIOUS revision's copy of this script, and a failing stop would block
# every later deployment, so anything but a command-line mistake is a warning and exit 0: no container, docker
# missing or not answering, an unreadable deploy.env. start_container.sh copes with a container left running.
# The NAME-berth-previous backup of an interrupted deploy is left alone: it is the last known good container.
#
# Exit codes:
#   0  OK  the container is stopped and removed, or there was nothing to stop
#   2  USAGE  bad arguments or deploy.env
set -euo pipefail

script_dir="$(dirname "$0")"
# shellcheck source-path=SCRIPTDIR
# shellcheck source=start_container.sh
if ! source "${script_dir}/start_container.sh"; then
    printf 'warning: cannot load %s/start_container.sh; nothing stopped\n' "$script_dir" >&2
    exit 0
fi

stop_name=""
stop_grace=10

read_stop_config() {
    local file="$1" value
    if ! parse_deploy_env "$file"; then
        warn "cannot read $file; nothing stopped"
        exit 0
    fi
    if value="$(config_value CONTAINER_NAME)"; then
        stop_name="$value"
    fi
    if value="$(config_value STOP_TIMEOUT)"; then
        stop_grace="$value"
    fi
}

parse_stop_args() {
    while (($# > 0)); do
        case "$1" in
            --name | --config | --stop-timeout) (($# >= 2)) || usage_error "$1 needs a value" ;;
            -h | --help)
                printf 'Usage: stop_container.sh (--name NAME | --config FILE) [--stop-timeout SECS]\n'
                exit 0
                ;;
            *) usage_error "unknown argument: $1 (see --help)" ;;
        esac
        case "$1" in
            --name) stop_name="$2" ;;
            --config) read_stop_config "$2" ;;
            --stop-timeout) stop_grace="$2" ;;
        esac
        shift 2
    done
}

main_stop() {
    parse_stop_args "$@"
    if [[ -z "$stop_name" ]]; then
        usage_error "give --name NAME or --config FILE with CONTAINER_NAME"
    fi
    if ! is_container_name "$stop_name"; then
        warn "'$stop_name' is not a valid container name; nothing stopped"
        exit 0
    fi
    [[ "$stop_grace" =~ ^[0-9]{1,4}$ ]] || stop_grace=10
    step stop
    if ! docker_answers; then
        warn "docker is missing or does not answer; nothing stopped"
        exit 0
    fi
    if ! container_exists "$stop_name"; then
        log "no container named $stop_name; nothing to stop"
        exit 0
    fi
    dk stop -t "$stop_grace" "$stop_name" >/dev/null 2>&1 || warn "docker stop $stop_name failed; removing it anyway"
    if dk rm -f "$stop_name" >/dev/null 2>&1 || ! container_exists "$stop_name"; then
        log "stopped and removed $stop_name"
    else
        warn "could not remove $stop_name; start_container.sh will replace it"
    fi
}

main_stop "$@"
