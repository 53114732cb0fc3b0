#!/usr/bin/env bash
# start_container.sh - pull an image and swap the named container over to it, health-checked, with rollback.
#
# Usage: start_container.sh --image REF --name NAME [--port HOST:CONTAINER[/udp]]... [--env KEY=VALUE]...
#            [--health-path PATH] [--health-port PORT] [--health-timeout SECS] [--health-interval SECS]
#            [--stop-timeout SECS] [--ecr-login REGION] [--config FILE]
#
# Steps, each announced on stdout as `berth-step: <step>`: docker, login, pull, stop-previous, start, health,
# then cleanup on success or restore on failure. The running container is renamed to NAME-berth-previous and
# stopped (freeing the name and the host ports), the new one is started, and the previous one is renamed back
# and restarted if the new one fails to start or to become healthy. On success the backup container is removed
# but its image is kept, so a rollback needs no pull. Success ends with `berth-digest: <repo@sha256:...>` and
# `berth-result: ok`; a failure prints `berth-error: <code> <NAME>` and a message on stderr.
#
# --config FILE reads a deploy.env: KEY=VALUE lines with IMAGE, CONTAINER_NAME, PORTS (space separated),
# HEALTH_PATH, HEALTH_PORT, HEALTH_TIMEOUT, HEALTH_INTERVAL, STOP_TIMEOUT, ECR_LOGIN_REGION and ENV_<NAME>
# for container environment variables. The file is parsed, never sourced: values are taken verbatim (one pair
# of surrounding quotes is dropped). Options are applied in order, so flags after --config override it.
#
# Self-contained: berth ships this file alone to instances through SSM. stop_container.sh and
# validate_service.sh source it for its functions; sourced, it defines them and runs nothing.
#
# Environment:
#   BERTH_LOCK_DIR  where the per-container lock file lives (default /var/lock, else /tmp)
#
# Exit codes:
#   0  OK  the new container is running and healthy
#   2  USAGE  bad arguments or deploy.env
#   10  DOCKER_UNAVAILABLE  docker is not installed or its daemon does not answer
#   20  REGISTRY_LOGIN_FAILED  registry login failed
#   21  PULL_FAILED  image pull failed; the running container was not touched
#   30  START_FAILED  the new container failed to start; the previous one was restored
#   40  HEALTH_FAILED_RESTORED  health check failed; the previous container was restored
#   41  HEALTH_FAILED_NOT_RESTORED  health check failed; no previous container could be restored
set -euo pipefail

readonly EXIT_USAGE=2
readonly EXIT_DOCKER_UNAVAILABLE=10
readonly EXIT_REGISTRY_LOGIN_FAILED=20
readonly EXIT_PULL_FAILED=21
readonly EXIT_START_FAILED=30
readonly EXIT_HEALTH_FAILED_RESTORED=40
readonly EXIT_HEALTH_FAILED_NOT_RESTORED=41

readonly BACKUP_SUFFIX="-berth-previous"
readonly LOG_TAIL_LINES=50
# With no --health-port the check is "still running, never restarted" for this long (capped by the timeout).
readonly SETTLE_SECONDS=5
readonly PROBE_TIMEOUT_SECONDS=5

# ---------------------------------------------------------------------------------------------------------
# Functions shared with stop_container.sh and validate_service.sh
# ---------------------------------------------------------------------------------------------------------

log() {
    printf '%s\n' "$*"
}

warn() {
    printf 'warning: %s\n' "$*" >&2
}

step() {
    printf 'berth-step: %s\n' "$1"
}

fail() {
    local code="$1" name="$2"
    shift 2
    printf 'berth-error: %s %s\n' "$code" "$name"
    printf 'error: %s\n' "$*" >&2
    exit "$code"
}

usage_error() {
    fail "$EXIT_USAGE" USAGE "$*"
}

# Every docker call goes through here so no container process inherits the deploy lock's descriptor.
dk() {
    docker "$@" 9>&-
}

docker_answers() {
    command -v docker >/dev/null 2>&1 && dk info >/dev/null 2>&1
}

is_container_name() {
    [[ "$1" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$ ]]
}

is_image_ref() {
    # Docker's reference grammar (distribution/reference), without IPv6 registry hosts.
    local alnum='[a-z0-9]+'
    local component="${alnum}(([._]|__|-+)${alnum})*"
    local host_part='([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
    local domain="${host_part}(\\.${host_part})*(:[0-9]+)?"
    local tag='[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
    local digest='[a-z0-9]+([+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}'
    local pattern="^(${domain}/)?${component}(/${component})*(:${tag})?(@${digest})?$"
    ((${#1} <= 512)) && [[ "$1" =~ $pattern ]]
}

is_port_mapping() {
    [[ "$1" =~ ^([0-9]{1,5}):([0-9]{1,5})(/(tcp|udp))?$ ]] || return 1
    local host_port="${BASH_REMATCH[1]}" container_port="${BASH_REMATCH[2]}"
    is_port "$host_port" && is_port "$container_port"
}

is_port() {
    [[ "$1" =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535))
}

is_positive_int() {
    [[ "$1" =~ ^[0-9]{1,6}$ ]] && ((10#$1 >= 1))
}

is_health_path() {
    [[ "$1" =~ ^/[^[:space:][:cntrl:]]*$ ]]
}

is_env_pair() {
    [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] && [[ "$1" != *$'\n'* ]]
}

is_region() {
    [[ "$1" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]]
}

# parse_deploy_env FILE: fills CONFIG_KEYS and CONFIG_VALUES (parallel arrays) from a deploy.env file.
# Returns 1 with a message on stderr when the file cannot be read or a line is not KEY=VALUE.
parse_deploy_env() {
    local file="$1" line key value line_number=0
    CONFIG_KEYS=()
    CONFIG_VALUES=()
    if [[ ! -f "$file" || ! -r "$file" ]]; then
        printf 'error: config file %s does not exist or cannot be read\n' "$file" >&2
        return 1
    fi
    while IFS= read -r line || [[ -n "$line" ]]; do
        line_number=$((line_number + 1))
        line="${line%$'\r'}"
        if [[ "$line" =~ ^[[:space:]]*(#.*)?$ ]]; then
            continue
        fi
        if ! [[ "$line" =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
            printf 'error: %s line %s is not KEY=VALUE: %s\n' "$file" "$line_number" "$line" >&2
            return 1
        fi
        key="${BASH_REMATCH[1]}"
        value="${BASH_REMATCH[2]}"
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then
            value="${BASH_REMATCH[1]}"
        fi
        CONFIG_KEYS+=("$key")
        CONFIG_VALUES+=("$value")
    done <"$file"
}

# config_value KEY: prints the last value of KEY read by parse_deploy_env; returns 1 when absent.
config_value() {
    local i found=1 value=""
    for ((i = 0; i < ${#CONFIG_KEYS[@]}; i++)); do
        if [[ "${CONFIG_KEYS[i]}" == "$1" ]]; then
            value="${CONFIG_VALUES[i]}"
            found=0
        fi
    done
    if ((found == 0)); then
        printf '%s\n' "$value"
    fi
    return "$found"
}

container_exists() {
    dk container inspect "$1" >/dev/null 2>&1
}

container_running() {
    local running
    running="$(dk container inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" || return 1
    [[ "$running" == "true" ]]
}

container_restarts() {
    dk container inspect --format '{{.RestartCount}}' "$1" 2>/dev/null || printf '0\n'
}

container_started_at() {
    dk container inspect --format '{{.State.StartedAt}}' "$1" 2>/dev/null || true
}

show_logs() {
    local name="$1"
    log "---- last ${LOG_TAIL_LINES} log lines of container ${name} ----"
    dk logs --tail "$LOG_TAIL_LINES" "$name" 2>&1 || log "(no logs: $name is gone)"
    log "---- end of logs of ${name} ----"
}

http_client_available() {
    command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1
}

probe_http() {
    local url="$1"
    if command -v curl >/dev/null 2>&1; then
        curl --fail --silent --show-error --output /dev/null --max-time "$PROBE_TIMEOUT_SECONDS" -- "$url"
    else
        wget -q -O /dev/null -T "$PROBE_TIMEOUT_SECONDS" -- "$url"
    fi
}

# wait_healthy NAME HEALTH_PORT HEALTH_PATH TIMEOUT INTERVAL
# With a HEALTH_PORT: GET http://127.0.0.1:PORT/PATH until it answers 2xx/3xx. Without: the container must
# stay running, never restarted, for a few seconds. NAME may be empty (HTTP probe only). Returns 0 if healthy.
wait_healthy() {
    local name="$1" port="$2" path="$3" timeout="$4" interval="$5"
    local deadline=$((SECONDS + timeout)) restarts_before=0 settle_until
    if [[ -n "$name" ]]; then
        if ! container_running "$name"; then
            log "container $name is not running"
            return 1
        fi
        restarts_before="$(container_restarts "$name")"
    fi
    if [[ -z "$port" ]]; then
        settle_until=$((SECONDS + (timeout < SETTLE_SECONDS ? timeout : SETTLE_SECONDS)))
        while ((SECONDS < settle_until)); do
            sleep 1
            if ! container_running "$name" || [[ "$(container_restarts "$name")" != "$restarts_before" ]]; then
                log "container $name stopped or restarted within ${SETTLE_SECONDS}s"
                return 1
            fi
        done
        log "container $name is running"
        return 0
    fi
    local url="http://127.0.0.1:${port}${path}"
    while true; do
        if probe_http "$url" 2>/dev/null; then
            log "healthy: $url answered"
            return 0
        fi
        if [[ -n "$name" ]] && ! container_running "$name"; then
            log "container $name exited while waiting for $url"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "unhealthy: $url did not answer with success within ${timeout}s"
            probe_http "$url" || true
            return 1
        fi
        sleep "$interval"
    done
}

# ---------------------------------------------------------------------------------------------------------
# The swap
# ---------------------------------------------------------------------------------------------------------

image=""
name=""
ports=()
ports_from_config=0
env_pairs=()
health_path="/"
health_port=""
health_timeout=60
health_interval=2
stop_timeout=10
ecr_region=""
# Set while a previous container sits renamed and stopped, so an unexpected exit puts it back.
swap_state="idle"

print_usage() {
    cat <<'USAGE'
Usage: start_container.sh --image REF --name NAME [--port HOST:CONTAINER[/udp]]... [--env KEY=VALUE]...
           [--health-path PATH] [--health-port PORT] [--health-timeout SECS] [--health-interval SECS]
           [--stop-timeout SECS] [--ecr-login REGION] [--config FILE]
USAGE
}

add_env_pair() {
    local pair="$1" key="${1%%=*}" kept=() existing
    for existing in ${env_pairs[@]+"${env_pairs[@]}"}; do
        if [[ "${existing%%=*}" != "$key" ]]; then
            kept+=("$existing")
        fi
    done
    env_pairs=(${kept[@]+"${kept[@]}"} "$pair")
}

apply_config_file() {
    local file="$1" i key value
    parse_deploy_env "$file" || usage_error "cannot use --config $file (see above)"
    for ((i = 0; i < ${#CONFIG_KEYS[@]}; i++)); do
        key="${CONFIG_KEYS[i]}"
        value="${CONFIG_VALUES[i]}"
        case "$key" in
            IMAGE) image="$value" ;;
            CONTAINER_NAME) name="$value" ;;
            PORTS)
                read -r -a ports <<<"$value"
                ports_from_config=1
                ;;
            HEALTH_PATH) health_path="$value" ;;
            HEALTH_PORT) health_port="$value" ;;
            HEALTH_TIMEOUT) health_timeout="$value" ;;
            HEALTH_INTERVAL) health_interval="$value" ;;
            STOP_TIMEOUT) stop_timeout="$value" ;;
            ECR_LOGIN_REGION) ecr_region="$value" ;;
            ENV_*)
                [[ "$key" =~ ^ENV_[A-Za-z_][A-Za-z0-9_]*$ ]] || usage_error "$file: bad env key $key"
                add_env_pair "${key#ENV_}=${value}"
                ;;
            *) usage_error "$file: unknown key $key (expected IMAGE, CONTAINER_NAME, PORTS, HEALTH_PATH," \
                "HEALTH_PORT, HEALTH_TIMEOUT, HEALTH_INTERVAL, STOP_TIMEOUT, ECR_LOGIN_REGION or ENV_<NAME>)" ;;
        esac
    done
}

parse_args() {
    local option
    while (($# > 0)); do
        option="$1"
        case "$option" in
            -h | --help)
                print_usage
                exit 0
                ;;
            --image | --name | --port | --env | --health-path | --health-port | --health-timeout | \
                --health-interval | --stop-timeout | --ecr-login | --config)
                (($# >= 2)) || usage_error "$option needs a value"
                ;;
            *) usage_error "unknown argument: $option (see --help)" ;;
        esac
        case "$option" in
            --image) image="$2" ;;
            --name) name="$2" ;;
            --port)
                if ((ports_from_config == 1)); then
                    ports=()
                    ports_from_config=0
                fi
                ports+=("$2")
                ;;
            --env) add_env_pair "$2" ;;
            --health-path) health_path="$2" ;;
            --health-port) health_port="$2" ;;
            --health-timeout) health_timeout="$2" ;;
            --health-interval) health_interval="$2" ;;
            --stop-timeout) stop_timeout="$2" ;;
            --ecr-login) ecr_region="$2" ;;
            --config) apply_config_file "$2" ;;
        esac
        shift 2
    done
}

validate_settings() {
    local port pair
    [[ -n "$image" ]] || usage_error "--image (or IMAGE in deploy.env) is required"
    [[ -n "$name" ]] || usage_error "--name (or CONTAINER_NAME in deploy.env) is required"
    is_image_ref "$image" || usage_error "--image '$image' is not a valid image reference (repo:tag or repo@sha256:...)"
    is_container_name "$name" || usage_error "--name '$name' is not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
    for port in ${ports[@]+"${ports[@]}"}; do
        is_port_mapping "$port" || usage_error "--port '$port' is not HOST:CONTAINER or HOST:CONTAINER/udp (1-65535)"
    done
    for pair in ${env_pairs[@]+"${env_pairs[@]}"}; do
        is_env_pair "$pair" || usage_error "--env needs KEY=VALUE with KEY a shell identifier and no newline"
    done
    is_health_path "$health_path" || usage_error "--health-path '$health_path' must start with / and hold no spaces"
    if [[ -n "$health_port" ]]; then
        is_port "$health_port" || usage_error "--health-port '$health_port' is not a port number"
        http_client_available || usage_error "--health-port needs curl or wget on the instance; install one"
    fi
    is_positive_int "$health_timeout" || usage_error "--health-timeout '$health_timeout' is not a positive integer"
    is_positive_int "$health_interval" || usage_error "--health-interval '$health_interval' is not a positive integer"
    [[ "$stop_timeout" =~ ^[0-9]{1,4}$ ]] || usage_error "--stop-timeout '$stop_timeout' is not a number of seconds"
    if [[ -n "$ecr_region" ]]; then
        is_region "$ecr_region" || usage_error "--ecr-login '$ecr_region' is not an AWS region"
        [[ -n "$(registry_host "$image")" ]] || usage_error "--ecr-login given but '$image' names no registry host"
    fi
}

# registry_host REF: prints the registry part of an image reference, or nothing for Docker Hub images.
registry_host() {
    local first="${1%%/*}"
    if [[ "$1" == */* && ("$first" == *.* || "$first" == *:* || "$first" == localhost) ]]; then
        printf '%s\n' "$first"
    fi
}

acquire_lock() {
    local lock_dir="${BERTH_LOCK_DIR:-/var/lock}"
    command -v flock >/dev/null 2>&1 || return 0
    [[ -d "$lock_dir" && -w "$lock_dir" ]] || lock_dir="/tmp"
    local lock_file="${lock_dir}/berth-${name}.lock"
    # Descriptor 9 holds the lock until this script exits; dk closes it for docker.
    exec 9>"$lock_file"
    if ! flock -n 9; then
        log "another deploy of $name is running; waiting for it to finish"
        flock 9
    fi
}

check_docker() {
    step docker
    command -v docker >/dev/null 2>&1 ||
        fail "$EXIT_DOCKER_UNAVAILABLE" DOCKER_UNAVAILABLE "docker is not installed; run install_docker.sh first"
    dk info >/dev/null 2>&1 ||
        fail "$EXIT_DOCKER_UNAVAILABLE" DOCKER_UNAVAILABLE "docker does not answer 'docker info'; start it" \
            "('systemctl start docker') or run install_docker.sh"
}

login_registry() {
    local host
    host="$(registry_host "$image")"
    step login
    command -v aws >/dev/null 2>&1 ||
        fail "$EXIT_REGISTRY_LOGIN_FAILED" REGISTRY_LOGIN_FAILED "the aws CLI is not installed; install it to use --ecr-login"
    if ! aws ecr get-login-password --region "$ecr_region" | dk login --username AWS --password-stdin "$host"; then
        fail "$EXIT_REGISTRY_LOGIN_FAILED" REGISTRY_LOGIN_FAILED "could not log in to $host; check the instance role" \
            "allows ecr:GetAuthorizationToken and that the region $ecr_region is right"
    fi
}

pull_image() {
    step pull
    if ! dk pull "$image"; then
        fail "$EXIT_PULL_FAILED" PULL_FAILED "could not pull $image; check the reference exists and the instance can" \
            "reach and read the registry. Container $name was not touched."
    fi
}

# Frees the name and host ports: the current container becomes the stopped backup.
stop_previous() {
    local backup="${name}${BACKUP_SUFFIX}"
    step stop-previous
    if container_exists "$backup"; then
        if container_exists "$name"; then
            log "removing stale backup container $backup"
            dk rm -f "$backup" >/dev/null
        else
            # An earlier run was interrupted mid-swap: its backup is the last known good container.
            log "recovering $backup left by an interrupted deploy"
            dk rename "$backup" "$name" || fail "$EXIT_START_FAILED" START_FAILED "could not rename $backup back" \
                "to $name; rename or remove it by hand ('docker rename $backup $name') and deploy again"
        fi
    fi
    if ! container_exists "$name"; then
        log "no previous container named $name"
        return 0
    fi
    dk rename "$name" "$backup" || fail "$EXIT_START_FAILED" START_FAILED "could not rename $name to $backup;" \
        "$name was left running. Check 'docker ps -a' and the docker daemon's log"
    swap_state="previous-stopped"
    log "stopping previous container (now $backup)"
    if ! dk stop -t "$stop_timeout" "$backup" >/dev/null; then
        restore_previous || true
        fail "$EXIT_START_FAILED" START_FAILED "could not stop the previous container $name to free its name and" \
            "ports; it was left in place. Check 'docker ps' and the docker daemon's log"
    fi
}

# Puts the backup back under its name and starts it. Returns 1 when there is none or it does not run.
restore_previous() {
    local backup="${name}${BACKUP_SUFFIX}"
    step restore
    swap_state="idle"
    if container_exists "$name"; then
        dk rm -f "$name" >/dev/null 2>&1 || true
    fi
    if ! container_exists "$backup"; then
        log "no previous container to restore"
        return 1
    fi
    if ! dk rename "$backup" "$name" || ! dk start "$name" >/dev/null; then
        log "the previous container could not be started again"
        return 1
    fi
    if ! container_running "$name"; then
        log "the previous container exited right after it was restarted"
        return 1
    fi
    log "restored the previous container $name"
}

start_new() {
    local run_args=(run -d --name "$name" --restart unless-stopped) port pair
    for port in ${ports[@]+"${ports[@]}"}; do
        run_args+=(-p "$port")
    done
    for pair in ${env_pairs[@]+"${env_pairs[@]}"}; do
        run_args+=(-e "$pair")
    done
    run_args+=("$image")
    step start
    if dk "${run_args[@]}"; then
        return 0
    fi
    log "docker run failed for $image"
    if container_exists "$name"; then
        show_logs "$name"
    fi
    if restore_previous; then
        fail "$EXIT_START_FAILED" START_FAILED "the new container did not start (see above); the previous one was restored"
    fi
    fail "$EXIT_START_FAILED" START_FAILED "the new container did not start (see above) and no previous container" \
        "could be restored: $name is DOWN"
}

check_health() {
    step health
    if wait_healthy "$name" "$health_port" "$health_path" "$health_timeout" "$health_interval"; then
        return 0
    fi
    show_logs "$name"
    if restore_previous; then
        fail "$EXIT_HEALTH_FAILED_RESTORED" HEALTH_FAILED_RESTORED "$image failed its health check (logs above);" \
            "the previous container was restored"
    fi
    fail "$EXIT_HEALTH_FAILED_NOT_RESTORED" HEALTH_FAILED_NOT_RESTORED "$image failed its health check (logs above)" \
        "and no previous container could be restored: $name is DOWN"
}

# Prints repo@sha256:... for the deployed image: the digest in the reference, else the pulled image's
# RepoDigest for the same repository, else the first RepoDigest, else the image id.
image_digest() {
    local repo="$image" last_part digests=() line
    if [[ "$image" == *@* ]]; then
        repo="${image%%@*}"
        last_part="${repo##*/}"
        [[ "$last_part" == *:* ]] && repo="${repo%:*}"
        printf '%s@%s\n' "$repo" "${image#*@}"
        return 0
    fi
    last_part="${image##*/}"
    [[ "$last_part" == *:* ]] && repo="${image%:*}"
    while IFS= read -r line; do
        [[ -n "$line" ]] && digests+=("$line")
    done < <(dk image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$image" 2>/dev/null || true)
    for line in ${digests[@]+"${digests[@]}"}; do
        if [[ "${line%%@*}" == "$repo" ]]; then
            printf '%s\n' "$line"
            return 0
        fi
    done
    if ((${#digests[@]} > 0)); then
        printf '%s\n' "${digests[0]}"
        return 0
    fi
    dk image inspect --format '{{.Id}}' "$image"
}

cleanup_backup() {
    local backup="${name}${BACKUP_SUFFIX}"
    step cleanup
    swap_state="idle"
    if container_exists "$backup"; then
        dk rm -f "$backup" >/dev/null
        log "removed the previous container; its image is kept for rollback"
    fi
}

on_exit() {
    local code=$?
    if [[ "$swap_state" != "idle" ]]; then
        printf 'error: interrupted during the swap (exit %s); putting the previous container back\n' "$code" >&2
        restore_previous >&2 || true
    fi
    exit "$code"
}

main() {
    parse_args "$@"
    validate_settings
    check_docker
    if [[ -n "$ecr_region" ]]; then
        login_registry
    fi
    pull_image
    acquire_lock
    trap on_exit EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    stop_previous
    start_new
    check_health
    cleanup_backup
    printf 'berth-digest: %s\n' "$(image_digest)"
    printf 'berth-result: %s\n' ok
}

# Sourced (by stop_container.sh, validate_service.sh): define the functions only.
if ! (return 0 2>/dev/null); then
    main "$@"
fi
