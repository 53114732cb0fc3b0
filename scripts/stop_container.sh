#!/usr/bin/env bash
# stop_container.sh - take a berth service off this host: its container, a leftover candidate, and its proxy.
#
# Usage: stop_container.sh (--name NAME | --config FILE) [--stop-timeout SECS]
#
# For decommissioning: the service goes down and its public ports are freed. No deploy runs it: a swap never
# stops the old container before the new one serves, and CodeDeploy's ApplicationStop hook stops nothing.
# Tolerant all the same: anything but a command-line mistake is a warning and exit 0 (no container, docker missing
# or not answering, an unreadable deploy.env). Only containers berth labelled for NAME are removed besides NAME
# itself: a NAME-berth-previous that berth did not create is left alone.
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
    remove_labelled "${stop_name}${CANDIDATE_SUFFIX}" "$LABEL_SERVICE"
    if container_exists "$stop_name"; then
        stop_and_remove "$stop_name"
    else
        log "no container named $stop_name; nothing to stop"
    fi
    remove_labelled "${stop_name}${PROXY_SUFFIX}-next" "$LABEL_PROXY"
    remove_labelled "${stop_name}${PROXY_SUFFIX}" "$LABEL_PROXY"
    rm -rf "${BERTH_STATE_DIR:-/var/lib/berth}/proxy/${stop_name}" || warn "could not remove the proxy's files"
}

stop_and_remove() {
    dk stop -t "$stop_grace" "$1" >/dev/null 2>&1 || warn "docker stop $1 failed; removing it anyway"
    if dk rm -f "$1" >/dev/null 2>&1 || ! container_exists "$1"; then
        log "stopped and removed $1"
    else
        warn "could not remove $1"
    fi
}

# remove_labelled CONTAINER LABEL: stop and remove it if berth created it for this service.
remove_labelled() {
    if container_exists "$1" && berth_owns "$1" "$2" "$stop_name"; then
        stop_and_remove "$1"
    fi
}

main_stop "$@"
