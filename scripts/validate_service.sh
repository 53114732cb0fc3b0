#!/usr/bin/env bash
# validate_service.sh - the health check of start_container.sh on its own (CodeDeploy's ValidateService).
#
# Usage: validate_service.sh [--config FILE] [--name NAME] [--health-port PORT] [--health-path PATH]
#            [--health-cmd ARG]... [--health-timeout SECS] [--health-interval SECS]
#
# With --health-port: GET http://127.0.0.1:PORT PATH until it answers 2xx/3xx or the timeout passes. Without it:
# the container NAME must stay running, not restarting, for a few seconds. With --health-cmd (one flag per
# argument): the command also has to exit 0 inside NAME (docker exec). deploy.env keys read: CONTAINER_NAME,
# HEALTH_PORT, HEALTH_PATH, HEALTH_TIMEOUT, HEALTH_INTERVAL, HEALTH_CMD_ARG (others are ignored). Options apply in
# order.
# This script restores nothing, so an unhealthy service exits 41; with CodeDeploy's automatic rollback the
# rollback is a new deployment of the previous revision.
#
# Exit codes:
#   0  OK  the service is healthy
#   2  USAGE  bad arguments or deploy.env
#   10  DOCKER_UNAVAILABLE  docker is not installed or its daemon does not answer
#   41  HEALTH_FAILED_NOT_RESTORED  health check failed; no previous container could be restored
set -euo pipefail

script_dir="$(dirname "$0")"
# shellcheck source-path=SCRIPTDIR
# shellcheck source=start_container.sh
source "${script_dir}/start_container.sh"

check_name=""
check_port=""
check_path="/"
check_timeout=60
check_interval=2

read_check_config() {
    local file="$1" value i
    parse_deploy_env "$file" || usage_error "cannot use --config $file (see above)"
    for ((i = 0; i < ${#CONFIG_KEYS[@]}; i++)); do
        [[ "${CONFIG_KEYS[i]}" != HEALTH_CMD_ARG ]] || health_cmd+=("${CONFIG_VALUES[i]}")
    done
    if value="$(config_value CONTAINER_NAME)"; then check_name="$value"; fi
    if value="$(config_value HEALTH_PORT)"; then check_port="$value"; fi
    if value="$(config_value HEALTH_PATH)"; then check_path="$value"; fi
    if value="$(config_value HEALTH_TIMEOUT)"; then check_timeout="$value"; fi
    if value="$(config_value HEALTH_INTERVAL)"; then check_interval="$value"; fi
}

parse_check_args() {
    while (($# > 0)); do
        case "$1" in
            --config | --name | --health-port | --health-path | --health-timeout | --health-interval | --health-cmd)
                (($# >= 2)) || usage_error "$1 needs a value"
                ;;
            -h | --help)
                printf 'Usage: validate_service.sh [--config FILE] [--name NAME] [--health-port PORT]'
                printf ' [--health-path PATH] [--health-cmd ARG]... [--health-timeout SECS] [--health-interval SECS]\n'
                exit 0
                ;;
            *) usage_error "unknown argument: $1 (see --help)" ;;
        esac
        case "$1" in
            --config) read_check_config "$2" ;;
            --name) check_name="$2" ;;
            --health-port) check_port="$2" ;;
            --health-path) check_path="$2" ;;
            --health-timeout) check_timeout="$2" ;;
            --health-interval) check_interval="$2" ;;
            --health-cmd) health_cmd+=("$2") ;;
        esac
        shift 2
    done
}

validate_check_settings() {
    if [[ -z "$check_name" && -z "$check_port" ]]; then
        usage_error "give --health-port PORT, --name NAME, or a --config FILE with HEALTH_PORT or CONTAINER_NAME"
    fi
    if [[ -n "$check_name" ]]; then
        is_container_name "$check_name" || usage_error "--name '$check_name' is not a valid container name"
    fi
    if [[ -n "$check_port" ]]; then
        is_port "$check_port" || usage_error "--health-port '$check_port' is not a port number"
        http_client_available || usage_error "--health-port needs curl or wget on the instance; install one"
    fi
    is_health_path "$check_path" || usage_error "--health-path '$check_path' must start with / and hold no spaces"
    is_positive_int "$check_timeout" || usage_error "--health-timeout '$check_timeout' is not a positive integer"
    is_positive_int "$check_interval" || usage_error "--health-interval '$check_interval' is not a positive integer"
}

main_check() {
    parse_check_args "$@"
    validate_check_settings
    if [[ -n "$check_name" ]]; then
        step docker
        docker_answers || fail "$EXIT_DOCKER_UNAVAILABLE" DOCKER_UNAVAILABLE "docker is missing or does not answer;" \
            "start it ('systemctl start docker') or run install_docker.sh"
    fi
    if ((${#health_cmd[@]} > 0)); then
        [[ -n "$check_name" ]] || usage_error "--health-cmd runs inside the container: give --name (or CONTAINER_NAME)"
        [[ -n "${health_cmd[0]}" ]] || usage_error "--health-cmd: the program to run may not be empty"
    fi
    step health
    if wait_healthy "$check_name" "$check_port" "$check_path" "$check_timeout" "$check_interval" &&
        wait_command_healthy "$check_name" "$((SECONDS + check_timeout))" "$check_interval"; then
        printf 'berth-result: %s\n' ok
        return 0
    fi
    if [[ -n "$check_name" ]] && container_exists "$check_name"; then
        show_logs "$check_name"
    fi
    fail "$EXIT_HEALTH_FAILED_NOT_RESTORED" HEALTH_FAILED_NOT_RESTORED "the service failed its health check" \
        "(logs above, if any); this script restores nothing"
}

main_check "$@"
