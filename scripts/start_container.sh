#!/usr/bin/env bash
# start_container.sh - pull an image and hand the named service over to it without a gap, health-checked.
#
# Usage: start_container.sh --image REF --name NAME [--port HOST:CONTAINER[/udp]]... [--env KEY=VALUE]...
#            [--health-path PATH] [--health-port PORT] [--health-cmd ARG]... [--health-timeout SECS]
#            [--health-interval SECS] [--stop-timeout SECS] [--drain-timeout SECS] [--ecr-login REGION]
#            [--proxy-image REF@sha256:...] [--allow-mutable-tags] [--keep-images N] [RUN OPTIONS] [--config FILE]
#            [--secret NAME=ARN]... [--registry-credentials ARN]
#
# Run options (how the container runs; berth's spec checks them too, and this script checks them again):
#   --cmd ARG... --entrypoint ARG...   one flag per argument: `--entrypoint=FIRST IMAGE REST... CMD...`
#   --user U[:G] --workdir DIR --volume SOURCE:TARGET[:ro]... --memory SIZE --memory-reservation SIZE --cpus N
#   --log-driver awslogs|json-file|journald|none --log-opt KEY=VALUE... --label KEY=VALUE... --network NAME
#   --restart POLICY --ulimit NAME=SOFT:HARD... --add-host HOST:IP... --read-only --init
#   --privileged --device PATH... --cap-add CAP... --pid host   (widen what the container can do to its host:
#   devices, capabilities, pid host and volumes of the host's system paths or the engine's socket need --privileged)
# Each value reaches `docker run` as one `--option=value` argument, never split or evaluated. A named network is
# created when missing; --network host swaps stop-then-start (the container binds the host's ports itself).
# --health-cmd runs its command inside the new container (docker exec) until it exits 0, beside the HTTP check.
#
# The old container serves until the new one is healthy. A local proxy, NAME-berth-proxy (haproxy in TCP mode on
# the host network, restart policy always, its image pinned by digest), owns the public TCP ports; the service's
# containers publish theirs on 127.0.0.1 ephemeral ports. Each step is announced as `berth-step: <step>`:
#   docker, login, pull  nothing is touched until both images are here, and the image is of this host's architecture
#   recover     finish or undo what a killed run left: a NAME-berth-next candidate, a proxy file ahead of the proxy
#   unchanged   NAME already runs this image with these settings and answers its health check: exit 0, no swap
#   start       start the candidate, NAME-berth-next, beside the old container
#   health      check the candidate on its own loopback port
#   switch      point the proxy at the candidate (its runtime API; a seamless reload when the public ports change)
#   drain       wait up to --drain-timeout (30 s) for the old container's connections to close, then stop it
#   promote     remove the old container and rename the candidate to NAME
# A failure before the switch removes the candidate (step restore): the old container never stopped serving. A
# service with a UDP port cannot be proxied, so its old container is stopped first (a short gap); a service with no
# ports needs no proxy. The first swap of a container that publishes the public port itself (berth's earlier
# scripts) stops it just before the proxy takes the port: a gap of about a second, once. Success ends with
# `berth-digest: <repo@sha256:...>` and `berth-result: ok`; a failure prints `berth-error: <code> <NAME>` and a
# message on stderr. The old image is kept, so a rollback needs no pull.
#
# --secret NAME=ARN (a Secrets Manager secret, ARN:JSON_KEY:: for one key, or an SSM parameter) is read with the
# instance profile after the pull into a root-only env file under /run (BERTH_SECRETS_DIR) for `docker run
# --env-file`, removed once the container exists (section Secrets). --registry-credentials ARN: a secret of
# {"username", "password"} to log in to the image's registry for the pull.
#
# Disk: each swap records the image in BERTH_STATE_DIR/images/NAME; after a swap, and when a pull or start fails
# with "no space left on device", the images NAME ran before are removed except its last --keep-images (3), the
# running one and the previous one (images NAME never ran are not touched). The no-space failure exits 25, which
# berth retries once: the retry finds the space this run freed.
#
# Images must be pinned: `latest` or no tag is refused unless --allow-mutable-tags (ALLOW_MUTABLE_TAGS=true).
# --config FILE reads a deploy.env: KEY=VALUE lines with IMAGE, CONTAINER_NAME, PORTS (space separated),
# HEALTH_PATH, HEALTH_PORT, HEALTH_TIMEOUT, HEALTH_INTERVAL, STOP_TIMEOUT, DRAIN_TIMEOUT, ECR_LOGIN_REGION,
# PROXY_IMAGE, ALLOW_MUTABLE_TAGS, KEEP_IMAGES and ENV_<NAME> for container environment variables, and the run
# options as
# COMMAND_ARG, ENTRYPOINT_ARG, HEALTH_CMD_ARG, VOLUME, LOG_OPT, LABEL, ULIMIT, EXTRA_HOST, DEVICE, CAP_ADD (one
# line each, repeated), USER, WORKDIR, MEMORY, MEMORY_RESERVATION, CPUS, LOG_DRIVER, NETWORK, RESTART, PID, and
# READ_ONLY, INIT, PRIVILEGED (true or false); SECRET_<NAME>=ARN and REGISTRY_CREDENTIALS=ARN. The file is
# parsed, never sourced: values are taken verbatim (one pair of surrounding quotes is dropped). Options apply in order.
#
# Self-contained: berth ships this file alone to instances through SSM. stop_container.sh and
# validate_service.sh source it for its functions; sourced, it defines them and runs nothing.
#
# Environment:
#   BERTH_LOCK_DIR     where the per-container lock file lives (default /var/lock, else /tmp)
#   BERTH_STATE_DIR    where the proxies' configuration lives (default /var/lib/berth)
#   BERTH_PROXY_IMAGE  the proxy image when neither --proxy-image nor PROXY_IMAGE names one
#
# Exit codes:
#   0  OK  the new container is running and healthy
#   2  USAGE  bad arguments or deploy.env
#   10  DOCKER_UNAVAILABLE  docker is not installed or its daemon does not answer
#   20  REGISTRY_LOGIN_FAILED  registry login failed
#   21  PULL_FAILED  image pull failed; the running container was not touched
#   22  SECRET_UNREADABLE  a secret could not be read; the running container was not touched
#   24  ARCHITECTURE_MISMATCH  the image is not built for this instance's architecture; the running container was not touched
#   25  NO_SPACE  no space left on device to pull or start the image; older images of the container were pruned
#   30  START_FAILED  the new container failed to start; the previous one is serving
#   31  PROXY_FAILED  the local proxy could not be started or switched; the previous container is serving
#   40  HEALTH_FAILED_RESTORED  health check failed; the previous container is serving
#   41  HEALTH_FAILED_NOT_RESTORED  health check failed; no previous container could be restored
set -euo pipefail

readonly ONE_OFF_PREFIX="berth-exec-"
readonly LABEL_ONE_OFF="berth.exec-for"
readonly ONE_OFF_KILL_AFTER=10
readonly EXIT_USAGE=2
readonly EXIT_DOCKER_UNAVAILABLE=10
readonly EXIT_REGISTRY_LOGIN_FAILED=20
readonly EXIT_PULL_FAILED=21
readonly EXIT_SECRET_UNREADABLE=22
readonly EXIT_ARCHITECTURE_MISMATCH=24
readonly EXIT_NO_SPACE=25
readonly EXIT_START_FAILED=30
readonly EXIT_PROXY_FAILED=31
readonly EXIT_HEALTH_FAILED_RESTORED=40
readonly EXIT_HEALTH_FAILED_NOT_RESTORED=41

readonly CANDIDATE_SUFFIX="-berth-next"
readonly PROXY_SUFFIX="-berth-proxy"
# Names berth gives its own containers (and the backup of its earlier scripts): no service may take them.
readonly RESERVED_NAME='-berth-(previous|next|proxy|proxy-next)$'
# Docker Hub's official haproxy 2.8.29 (its multi-platform index); the image holds the socat berth talks to it with.
readonly DEFAULT_PROXY_IMAGE="docker.io/library/haproxy:2.8.29@sha256:\
76e67f835631cf03eec13f1ca6e9568c8b3d3530f5232aa7e69a81083fe26031"
# Inside the proxy container only: reaching it takes `docker exec`, so only who may run docker can steer traffic.
readonly PROXY_SOCKET="/run/berth-proxy.sock"
readonly PROXY_CONFIG_DIR="/usr/local/etc/haproxy"
readonly PROXY_WAIT_SECONDS=15
readonly LABEL_SERVICE="berth.service"
readonly LABEL_SETTINGS="berth.settings"
readonly LABEL_PROXY="berth.proxy-for"
readonly LOG_TAIL_LINES=50
# With no --health-port the check is "still running, never restarted" for this long (capped by the timeout).
readonly SETTLE_SECONDS=5
readonly PROBE_TIMEOUT_SECONDS=5
# One run of --health-cmd; it runs again every --health-interval until it passes or --health-timeout ends.
readonly HEALTH_COMMAND_SECONDS=10
# Host paths a container may not mount without --privileged (berth's spec: chalicelib/domain/spec/host_paths.py). The
# engine's socket is root on the host, and so is any directory above it; so are these trees, and, written, the
# host's system directories and berth's own state.
readonly CONTAINER_SOCKETS=(/var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock
    /var/run/containerd/containerd.sock /run/podman/podman.sock /var/run/podman/podman.sock)
readonly HOST_TREES=(/proc /sys /dev /root /var/lib/docker /var/lib/containerd /run/docker /var/run/docker
    /run/containerd /var/run/containerd)
readonly HOST_TREES_WRITABLE=(/etc /usr /bin /sbin /lib /lib32 /lib64 /boot /var/lib/berth)
readonly ULIMIT_NAMES="core|cpu|data|fsize|locks|memlock|msgqueue|nice|nofile|nproc|rss|rtprio|rttime|sigpending|stack"

# ---------------------------------------------------------------------------------------------------------
# Functions shared with stop_container.sh and validate_service.sh
# ---------------------------------------------------------------------------------------------------------

log() {
    [[ "${quiet:-false}" == true ]] || printf '%s\n' "$*"
}

warn() {
    printf 'warning: %s\n' "$*" >&2
}

step() {
    [[ "${quiet:-false}" == true ]] || printf 'berth-step: %s\n' "$1"
}

fail() {
    local code="$1" name="$2"
    shift 2
    if [[ "${quiet:-false}" == true ]]; then
        printf 'berth-error: %s %s\n' "$code" "$name" >&2
    else
        printf 'berth-error: %s %s\n' "$code" "$name"
    fi
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

# A reference that may point at other bits tomorrow: no digest, and no tag or `latest`.
is_mutable_ref() {
    local last="${1##*/}"
    [[ "$1" != *@* ]] && [[ "$last" != *:* || "${last##*:}" == latest ]]
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

# label_of CONTAINER KEY: the container's label, empty when it has none.
label_of() {
    local value
    value="$(dk container inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null)" || return 0
    [[ "$value" == "<no value>" ]] || printf '%s\n' "$value"
}

# berth_owns CONTAINER LABEL SERVICE: berth created CONTAINER for SERVICE (it says so in the label).
berth_owns() {
    [[ "$(label_of "$1" "$2")" == "$3" ]]
}

# published_port CONTAINER PORT: the host port a container's PORT/tcp is published on.
published_port() {
    local line
    line="$(dk port "$1" "$2/tcp" 2>/dev/null)" || return 1
    line="${line%%$'\n'*}"
    [[ "$line" =~ :([0-9]+)$ ]] || return 1
    printf '%s\n' "${BASH_REMATCH[1]}"
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

# run_health_command CONTAINER: the --health-cmd command inside CONTAINER, at most HEALTH_COMMAND_SECONDS.
run_health_command() {
    if command -v timeout >/dev/null 2>&1; then
        timeout "$HEALTH_COMMAND_SECONDS" docker exec "$1" ${health_cmd[@]+"${health_cmd[@]}"} 9>&-
    else
        dk exec "$1" ${health_cmd[@]+"${health_cmd[@]}"}
    fi
}

# wait_command_healthy NAME DEADLINE INTERVAL: runs the --health-cmd command in NAME until it exits 0 (returns 0),
# NAME stops, or SECONDS reaches DEADLINE. No command: healthy.
wait_command_healthy() {
    local name="$1" deadline="$2" interval="$3" output=""
    ((${#health_cmd[@]} > 0)) || return 0
    while true; do
        if output="$(run_health_command "$name" 2>&1)"; then
            log "healthy: the health command passed in $name"
            return 0
        fi
        if ! container_running "$name"; then
            log "container $name exited while its health command ran"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "unhealthy: the health command did not pass in $name in time; the end of its last output:"
            # Indented: a line of the container's output can never pass for one of berth's own `berth-...` lines.
            printf '%s\n' "${output: -2000}" | sed 's/^/    | /'
            return 1
        fi
        sleep "$interval"
    done
}

# ---------------------------------------------------------------------------------------------------------
# Settings
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
drain_timeout=30
ecr_region=""
proxy_image="${BERTH_PROXY_IMAGE:-$DEFAULT_PROXY_IMAGE}"
allow_mutable_tags="false"
keep_images=3
state_dir="${BERTH_STATE_DIR:-/var/lib/berth}"
settings_hash=""
# A one-off run (run_one_off) instead of a swap: its id, its timeout and its command.
one_off_id=""
one_off_timeout=600
one_off_args=()
quiet="false"

print_usage() {
    cat <<'USAGE'
Usage: start_container.sh --image REF --name NAME [--port HOST:CONTAINER[/udp]]... [--env KEY=VALUE]...
           [--health-path PATH] [--health-port PORT] [--health-cmd ARG]... [--health-timeout SECS]
           [--health-interval SECS] [--stop-timeout SECS] [--drain-timeout SECS] [--ecr-login REGION]
           [--proxy-image REF@sha256:...] [--allow-mutable-tags] [--keep-images N] [--config FILE]
           [--cmd ARG]... [--entrypoint ARG]... [--user U[:G]] [--workdir DIR] [--volume SOURCE:TARGET[:ro]]...
           [--memory SIZE] [--memory-reservation SIZE] [--cpus N] [--log-driver DRIVER] [--log-opt KEY=VALUE]...
           [--label KEY=VALUE]... [--network NAME] [--restart POLICY] [--ulimit NAME=SOFT:HARD]...
           [--add-host HOST:IP]... [--read-only] [--init] [--privileged] [--device PATH]... [--cap-add CAP]...
           [--pid host] [--secret NAME=ARN]... [--registry-credentials ARN]
           [--one-off RUN_ID [--one-off-timeout SECS] [--one-off-arg ARG]...]

With --one-off, no swap: the image runs once as berth-exec-RUN_ID with the service's env, secrets, volumes and run
options, removed when it ends (no ports, no restart policy), the --one-off-arg words as its command; the script exits
with the run's exit code, and writes nothing of its own to stdout.
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

# ---------------------------------------------------------------------------------------------------------
# Run options: how the container runs. Each becomes one `--option=value` word of docker run (run_options), or
# an argument after the image (container_args); nothing is split or evaluated.
# ---------------------------------------------------------------------------------------------------------

cmd_args=()
entrypoint_args=()
health_cmd=()
run_user=""
run_workdir=""
volumes=()
memory=""
memory_reservation=""
cpus=""
log_driver=""
log_opts=()
labels=()
network=""
restart_policy=""
ulimits=()
extra_hosts=()
devices=()
cap_adds=()
pid_mode=""
read_only="false"
init_process="false"
privileged="false"
stop_timeout_given="false"
run_options=()
container_args=()

# set_run_option FLAG VALUE: a run option that takes a value (see --help).
set_run_option() {
    case "$1" in
        --cmd) cmd_args+=("$2") ;;
        --entrypoint) entrypoint_args+=("$2") ;;
        --health-cmd) health_cmd+=("$2") ;;
        --user) run_user="$2" ;;
        --workdir) run_workdir="$2" ;;
        --volume) volumes+=("$2") ;;
        --memory) memory="$2" ;;
        --memory-reservation) memory_reservation="$2" ;;
        --cpus) cpus="$2" ;;
        --log-driver) log_driver="$2" ;;
        --log-opt) log_opts+=("$2") ;;
        --label) labels+=("$2") ;;
        --network) network="$2" ;;
        --restart) restart_policy="$2" ;;
        --ulimit) ulimits+=("$2") ;;
        --add-host) extra_hosts+=("$2") ;;
        --device) devices+=("$2") ;;
        --cap-add) cap_adds+=("$2") ;;
        --pid) pid_mode="$2" ;;
        *) usage_error "unknown argument: $1 (see --help)" ;;
    esac
}

# set_run_switch FLAG true|false
set_run_switch() {
    case "$1" in
        --read-only) read_only="$2" ;;
        --init) init_process="$2" ;;
        --privileged) privileged="$2" ;;
    esac
}

# config_flag KEY: the flag a deploy.env run option key stands for (VOLUME -> --volume).
config_flag() {
    local flag="${1,,}"
    case "$1" in
        COMMAND_ARG) printf '%s\n' --cmd ;;
        ENTRYPOINT_ARG) printf '%s\n' --entrypoint ;;
        HEALTH_CMD_ARG) printf '%s\n' --health-cmd ;;
        EXTRA_HOST) printf '%s\n' --add-host ;;
        *) printf -- '--%s\n' "${flag//_/-}" ;;
    esac
}

has_control_chars() {
    [[ "$1" == *[[:cntrl:]]* ]]
}

# An absolute path in its normal form: no empty, `.` or `..` component, no trailing slash (but /).
is_normal_path() {
    [[ "$1" == / ]] && return 0
    [[ "$1" == /* && "$1" != */ && "$1" != *//* && "$1" != */./* && "$1" != */../* && "$1" != */. &&
        "$1" != */.. ]] && ! has_control_chars "$1"
}

is_size() {
    [[ "$1" =~ ^[1-9][0-9]{0,6}[bkmg]$ ]]
}

size_bytes() {
    local number="${1%?}"
    case "${1: -1}" in
        b) printf '%s\n' "$number" ;;
        k) printf '%s\n' "$((number * 1024))" ;;
        m) printf '%s\n' "$((number * 1024 * 1024))" ;;
        g) printf '%s\n' "$((number * 1024 * 1024 * 1024))" ;;
    esac
}

# host_path_widens PATH READ_ONLY: prints why mounting host PATH gives a container its host; nothing otherwise.
host_path_widens() {
    local path="$1" read_only="$2" each
    for each in ${CONTAINER_SOCKETS[@]+"${CONTAINER_SOCKETS[@]}"}; do
        if [[ "$path" == / || "$each" == "$path" || "$each" == "$path"/* ]]; then
            printf '%s\n' "it holds the container engine's socket $each (root on the host)"
            return 0
        fi
    done
    for each in ${HOST_TREES[@]+"${HOST_TREES[@]}"}; do
        if [[ "$path" == "$each" || "$path" == "$each"/* ]]; then
            printf '%s\n' "$each reaches the host's kernel, devices or the engine's own data"
            return 0
        fi
    done
    [[ "$read_only" == true ]] && return 0
    for each in ${HOST_TREES_WRITABLE[@]+"${HOST_TREES_WRITABLE[@]}"}; do
        if [[ "$path" == "$each" || "$path" == "$each"/* ]]; then
            printf '%s\n' "$each written from a container is root on the host (mount it with :ro)"
            return 0
        fi
    done
}

# check_volume SOURCE:TARGET[:ro]: refuses a bad volume; a host path is checked as written and as it resolves
# on this host (a symlink to the Docker socket is the socket).
check_volume() {
    local volume="$1" source target read_only="false" why resolved
    [[ "$volume" =~ ^([^:]+):([^:]+)(:ro)?$ ]] ||
        usage_error "--volume '$volume' must be SOURCE:TARGET or SOURCE:TARGET:ro (paths hold no ':')"
    source="${BASH_REMATCH[1]}" target="${BASH_REMATCH[2]}"
    [[ -z "${BASH_REMATCH[3]}" ]] || read_only="true"
    if has_control_chars "$volume" || [[ "$volume" == *,* ]] || ((${#volume} > 1024)); then
        usage_error "--volume: control characters and ',' are not allowed, and at most 1024 characters"
    fi
    if ! is_normal_path "$target" || [[ "$target" == / ]]; then
        usage_error "--volume '$volume': the target is an absolute path in its normal form, not /"
    fi
    if [[ "$source" != /* ]]; then
        [[ "$source" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$ ]] ||
            usage_error "--volume '$volume': the source is a host path (starting with /) or a volume name"
        return 0
    fi
    is_normal_path "$source" || usage_error "--volume '$volume': write the host path in its normal form"
    [[ "$privileged" == true ]] && return 0
    why="$(host_path_widens "$source" "$read_only")"
    if [[ -z "$why" ]] && command -v realpath >/dev/null 2>&1 && resolved="$(realpath -m -- "$source")" &&
        [[ "$resolved" != "$source" ]]; then
        why="$(host_path_widens "$resolved" "$read_only")"
        [[ -z "$why" ]] || why="it resolves to $resolved: $why"
    fi
    [[ -z "$why" ]] || usage_error "--volume '$volume' mounts the host's $source: $why; refused without --privileged"
}

# check_log_opt KEY=VALUE: an option the chosen --log-driver takes, in its shape.
check_log_opt() {
    local key="${1%%=*}" value="${1#*=}" pattern=""
    [[ "$1" == *=* ]] || usage_error "--log-opt '$1' is not KEY=VALUE"
    case "${log_driver}:${key}" in
        json-file:max-size | awslogs:max-buffer-size) pattern='^[1-9][0-9]{0,6}[bkmg]$' ;;
        json-file:max-file) pattern='^[1-9][0-9]{0,2}$' ;;
        json-file:compress | awslogs:awslogs-create-group) pattern='^(true|false)$' ;;
        awslogs:awslogs-group) pattern='^[-._/#A-Za-z0-9]{1,512}$' ;;
        awslogs:awslogs-region) pattern='^[a-z]{2}(-[a-z]+)+-[0-9]+$' ;;
        awslogs:awslogs-stream-prefix) pattern='^[A-Za-z0-9._/-]{1,128}$' ;;
        awslogs:mode) pattern='^(blocking|non-blocking)$' ;;
        journald:tag) pattern='^[A-Za-z0-9._/-]{1,64}$' ;;
        *) usage_error "--log-opt $key is not an option berth passes to the log driver '${log_driver:-(none given)}'" ;;
    esac
    [[ "$value" =~ $pattern ]] || usage_error "--log-opt $key: '$value' does not match $pattern"
}

# refuse_unless_privileged FLAG WHY
refuse_unless_privileged() {
    [[ "$privileged" == true ]] ||
        usage_error "$1 $2; refused without --privileged (\"privileged\": true in the spec)"
}

validate_run_options() {
    local each name_or_id='([a-z_][a-z0-9_.-]{0,31}|[0-9]{1,10})'
    local hostname='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*'
    for each in read_only init_process privileged; do
        [[ "${!each}" == true || "${!each}" == false ]] || usage_error "${each}: '${!each}' is not true or false"
    done
    if ((${#entrypoint_args[@]} > 0)) && [[ -z "${entrypoint_args[0]}" ]]; then
        usage_error "--entrypoint: the program to run may not be empty"
    fi
    if ((${#health_cmd[@]} > 0)) && [[ -z "${health_cmd[0]}" ]]; then
        usage_error "--health-cmd: the program to run may not be empty"
    fi
    [[ -z "$run_user" || "$run_user" =~ ^${name_or_id}(:${name_or_id})?$ ]] ||
        usage_error "--user '$run_user' is not USER[:GROUP] by name or number"
    [[ -z "$run_workdir" ]] || is_normal_path "$run_workdir" ||
        usage_error "--workdir must be an absolute path in its normal form"
    for each in ${volumes[@]+"${volumes[@]}"}; do
        check_volume "$each"
    done
    for each in memory memory_reservation; do
        [[ -z "${!each}" ]] || is_size "${!each}" || usage_error "${each}: '${!each}' is not a size such as 512m or 1g"
        [[ -z "${!each}" ]] || (($(size_bytes "${!each}") >= 6 * 1024 * 1024)) ||
            usage_error "${each}: ${!each} is under Docker's minimum of 6m"
    done
    if [[ -n "$memory" && -n "$memory_reservation" ]] &&
        (($(size_bytes "$memory_reservation") > $(size_bytes "$memory"))); then
        usage_error "--memory-reservation $memory_reservation may not pass --memory $memory"
    fi
    [[ -z "$cpus" || ("$cpus" =~ ^[0-9]{1,4}(\.[0-9]{1,2})?$ && ! "$cpus" =~ ^0+(\.0*)?$) ]] ||
        usage_error "--cpus '$cpus' is not a number of CPUs such as 0.5"
    case "$log_driver" in
        "" | awslogs | json-file | journald | none) ;;
        *) usage_error "--log-driver '$log_driver' is not awslogs, json-file, journald or none" ;;
    esac
    for each in ${log_opts[@]+"${log_opts[@]}"}; do
        check_log_opt "$each"
    done
    for each in ${labels[@]+"${labels[@]}"}; do
        if ! [[ "$each" =~ ^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}= ]] || has_control_chars "$each" ||
            ((${#each} > 1200)); then
            usage_error "--label needs KEY=VALUE, KEY [A-Za-z0-9][A-Za-z0-9._/-]*, no control characters"
        fi
        [[ ! "${each,,}" =~ ^berth\. ]] || usage_error "--label ${each%%=*}: keys starting with berth. are berth's own"
    done
    if [[ -n "$network" ]]; then
        [[ "$network" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ && "$network" != none && "$network" != default ]] ||
            usage_error "--network '$network' is not bridge, host or a network name of your own"
    fi
    [[ -z "$restart_policy" || "$restart_policy" =~ ^(no|always|unless-stopped|on-failure(:[1-9][0-9]{0,2})?)$ ]] ||
        usage_error "--restart '$restart_policy' is not no, always, unless-stopped or on-failure[:N]"
    for each in ${ulimits[@]+"${ulimits[@]}"}; do
        [[ "$each" =~ ^(${ULIMIT_NAMES})=(-1|[0-9]{1,18}):(-1|[0-9]{1,18})$ ]] ||
            usage_error "--ulimit '$each' is not NAME=SOFT:HARD with NAME one of ${ULIMIT_NAMES//|/, }"
    done
    for each in ${extra_hosts[@]+"${extra_hosts[@]}"}; do
        [[ "$each" =~ ^${hostname}:([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*|host-gateway)$ ]] ||
            usage_error "--add-host '$each' is not HOST:IP (or HOST:host-gateway)"
    done
    for each in ${devices[@]+"${devices[@]}"}; do
        [[ "$each" =~ ^/dev/[A-Za-z0-9._/-]{1,200}(:/dev/[A-Za-z0-9._/-]{1,200})?(:[rwm]{1,3})?$ ]] ||
            usage_error "--device '$each' is not /dev/HOST[:/dev/CONTAINER][:rwm]"
        refuse_unless_privileged "--device $each" "gives the container a host device"
    done
    for each in ${cap_adds[@]+"${cap_adds[@]}"}; do
        [[ "$each" =~ ^(CAP_)?[A-Z][A-Z_]{1,31}$ ]] || usage_error "--cap-add '$each' is not a capability name"
        refuse_unless_privileged "--cap-add $each" "widens what the container may do to its host"
    done
    if [[ -n "$pid_mode" ]]; then
        [[ "$pid_mode" == host ]] || usage_error "--pid takes host only"
        refuse_unless_privileged "--pid host" "gives the container the host's processes"
    fi
    build_run_options
}

# Fills run_options (`--option=value` words) and container_args (the container's argv after the image).
build_run_options() {
    local each
    run_options=()
    container_args=()
    if ((${#entrypoint_args[@]} > 0)); then
        run_options+=("--entrypoint=${entrypoint_args[0]}")
        container_args+=("${entrypoint_args[@]:1}")
    fi
    container_args+=(${cmd_args[@]+"${cmd_args[@]}"})
    [[ -z "$run_user" ]] || run_options+=("--user=$run_user")
    [[ -z "$run_workdir" ]] || run_options+=("--workdir=$run_workdir")
    [[ -z "$memory" ]] || run_options+=("--memory=$memory")
    [[ -z "$memory_reservation" ]] || run_options+=("--memory-reservation=$memory_reservation")
    [[ -z "$cpus" ]] || run_options+=("--cpus=$cpus")
    [[ -z "$network" ]] || run_options+=("--network=$network")
    [[ -z "$restart_policy" ]] || run_options+=("--restart=$restart_policy")
    [[ -z "$pid_mode" ]] || run_options+=("--pid=$pid_mode")
    [[ -z "$log_driver" ]] || run_options+=("--log-driver=$log_driver")
    for each in ${volumes[@]+"${volumes[@]}"}; do run_options+=("--volume=$each"); done
    for each in ${log_opts[@]+"${log_opts[@]}"}; do run_options+=("--log-opt=$each"); done
    for each in ${labels[@]+"${labels[@]}"}; do run_options+=("--label=$each"); done
    for each in ${ulimits[@]+"${ulimits[@]}"}; do run_options+=("--ulimit=$each"); done
    for each in ${extra_hosts[@]+"${extra_hosts[@]}"}; do run_options+=("--add-host=$each"); done
    for each in ${devices[@]+"${devices[@]}"}; do run_options+=("--device=$each"); done
    for each in ${cap_adds[@]+"${cap_adds[@]}"}; do run_options+=("--cap-add=$each"); done
    [[ "$read_only" != true ]] || run_options+=(--read-only)
    [[ "$init_process" != true ]] || run_options+=(--init)
    [[ "$privileged" != true ]] || run_options+=(--privileged)
}

# A named network is created when missing (bridge driver); bridge and host always exist.
ensure_network() {
    [[ -n "$network" && "$network" != bridge && "$network" != host ]] || return 0
    dk network inspect "$network" >/dev/null 2>&1 && return 0
    log "creating the network $network"
    dk network create "$network" >/dev/null || dk network inspect "$network" >/dev/null 2>&1 ||
        fail "$EXIT_START_FAILED" START_FAILED "could not create the network $network; container $name was not touched"
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
            STOP_TIMEOUT)
                stop_timeout="$value"
                stop_timeout_given="true"
                ;;
            DRAIN_TIMEOUT) drain_timeout="$value" ;;
            ECR_LOGIN_REGION) ecr_region="$value" ;;
            PROXY_IMAGE) proxy_image="$value" ;;
            ALLOW_MUTABLE_TAGS) allow_mutable_tags="$value" ;;
            KEEP_IMAGES) keep_images="$value" ;;
            ENV_*)
                [[ "$key" =~ ^ENV_[A-Za-z_][A-Za-z0-9_]*$ ]] || usage_error "$file: bad env key $key"
                add_env_pair "${key#ENV_}=${value}"
                ;;
            SECRET_*)
                [[ "$key" =~ ^SECRET_[A-Za-z_][A-Za-z0-9_]*$ ]] || usage_error "$file: bad secret key $key"
                add_secret_pair "${key#SECRET_}=${value}"
                ;;
            REGISTRY_CREDENTIALS) registry_credentials="$value" ;;
            READ_ONLY | INIT | PRIVILEGED) set_run_switch "$(config_flag "$key")" "$value" ;;
            COMMAND_ARG | ENTRYPOINT_ARG | HEALTH_CMD_ARG | USER | WORKDIR | VOLUME | MEMORY | MEMORY_RESERVATION | \
                CPUS | LOG_DRIVER | LOG_OPT | LABEL | NETWORK | RESTART | ULIMIT | EXTRA_HOST | DEVICE | CAP_ADD | PID)
                set_run_option "$(config_flag "$key")" "$value"
                ;;
            *) usage_error "$file: unknown key $key (expected IMAGE, CONTAINER_NAME, PORTS, HEALTH_PATH," \
                "HEALTH_PORT, HEALTH_TIMEOUT, HEALTH_INTERVAL, STOP_TIMEOUT, DRAIN_TIMEOUT, ECR_LOGIN_REGION," \
                "PROXY_IMAGE, ALLOW_MUTABLE_TAGS, KEEP_IMAGES, ENV_<NAME>, SECRET_<NAME>, REGISTRY_CREDENTIALS or a" \
                "run option: see the header)" ;;
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
            --allow-mutable-tags)
                allow_mutable_tags="true"
                shift
                continue
                ;;
            --read-only | --init | --privileged)
                set_run_switch "$option" true
                shift
                continue
                ;;
            --image | --name | --port | --env | --health-path | --health-port | --health-timeout | \
                --health-interval | --stop-timeout | --drain-timeout | --ecr-login | --proxy-image | --config | \
                --keep-images | \
                --cmd | --entrypoint | --health-cmd | --user | --workdir | --volume | --memory | \
                --memory-reservation | --cpus | --log-driver | --log-opt | --label | --network | --restart | \
                --ulimit | --add-host | --device | --cap-add | --pid | --secret | --registry-credentials | \
                --one-off | --one-off-timeout | --one-off-arg)
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
            --stop-timeout)
                stop_timeout="$2"
                stop_timeout_given="true"
                ;;
            --drain-timeout) drain_timeout="$2" ;;
            --ecr-login) ecr_region="$2" ;;
            --proxy-image) proxy_image="$2" ;;
            --keep-images) keep_images="$2" ;;
            --config) apply_config_file "$2" ;;
            --secret) add_secret_pair "$2" ;;
            --registry-credentials) registry_credentials="$2" ;;
            --one-off) one_off_id="$2" ;;
            --one-off-timeout) one_off_timeout="$2" ;;
            --one-off-arg) one_off_args+=("$2") ;;
            *) set_run_option "$option" "$2" ;;
        esac
        shift 2
    done
}

validate_settings() {
    local port pair
    [[ -n "$image" ]] || usage_error "--image (or IMAGE in deploy.env) is required"
    [[ -n "$name" ]] || usage_error "--name (or CONTAINER_NAME in deploy.env) is required"
    is_image_ref "$image" || usage_error "--image '$image' is not a valid image reference (repo:tag or repo@sha256:...)"
    [[ "$allow_mutable_tags" == true || "$allow_mutable_tags" == false ]] ||
        usage_error "ALLOW_MUTABLE_TAGS must be true or false, not '$allow_mutable_tags'"
    if [[ "$allow_mutable_tags" != true ]] && is_mutable_ref "$image"; then
        usage_error "--image '$image' has no tag or the tag latest, which can point at other bits tomorrow: deploy" \
            "an immutable tag or repo@sha256:<digest>, or pass --allow-mutable-tags (ALLOW_MUTABLE_TAGS=true)"
    fi
    is_container_name "$name" || usage_error "--name '$name' is not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
    [[ ! "$name" =~ $RESERVED_NAME ]] || usage_error "--name '$name' ends like the containers berth names itself" \
        "(-berth-previous, -berth-next, -berth-proxy, -berth-proxy-next); choose another name"
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
    [[ "$drain_timeout" =~ ^[0-9]{1,4}$ ]] || usage_error "--drain-timeout '$drain_timeout' is not a number of seconds"
    if [[ -n "$ecr_region" ]]; then
        is_region "$ecr_region" || usage_error "--ecr-login '$ecr_region' is not an AWS region"
        [[ -n "$(registry_host "$image")" ]] || usage_error "--ecr-login given but '$image' names no registry host"
    fi
    if ! is_image_ref "$proxy_image" || [[ "$proxy_image" != *@sha256:* ]]; then
        usage_error "the proxy image '$proxy_image' must be a reference pinned by digest (repo@sha256:...)"
    fi
    [[ "$state_dir" == /* ]] || usage_error "BERTH_STATE_DIR '$state_dir' must be an absolute path"
    [[ "$keep_images" =~ ^[1-9][0-9]?$ ]] || usage_error "--keep-images '$keep_images' is not a number from 1 to 99"
    validate_run_options
    validate_secrets
    classify_ports
    if [[ -n "$one_off_id" ]]; then
        [[ "$one_off_id" =~ ^[a-z0-9][a-z0-9-]{0,39}$ ]] || usage_error "--one-off '$one_off_id' is not a run id" \
            "(lower-case letters, digits and hyphens, at most 40)"
        [[ "$one_off_timeout" =~ ^[1-9][0-9]{0,4}$ ]] || usage_error "--one-off-timeout '$one_off_timeout' is not" \
            "a number of seconds"
        ((${#one_off_args[@]} > 0)) || usage_error "--one-off needs its command: one --one-off-arg a word"
    elif ((${#one_off_args[@]} > 0)); then
        usage_error "--one-off-arg without --one-off"
    fi
}

# The swap's shape follows the ports: TCP only -> "proxied"; any UDP -> "direct" (haproxy cannot carry UDP);
# none -> "portless". Fills tcp_hosts/tcp_targets (host and container port of each TCP mapping, as numbers).
mode=""
tcp_hosts=()
tcp_targets=()
health_target=""

classify_ports() {
    local mapping i has_udp=0
    if [[ "$network" == host ]]; then
        ((${#ports[@]} == 0)) || usage_error "--network host: the container binds the host's ports itself; give no" \
            "--port"
        # Two containers cannot bind one host port: the old one stops first, as with UDP.
        mode="direct"
        return 0
    fi
    for mapping in ${ports[@]+"${ports[@]}"}; do
        [[ "$mapping" =~ ^([0-9]+):([0-9]+)(/(tcp|udp))?$ ]]
        if [[ "${BASH_REMATCH[4]}" == udp ]]; then
            has_udp=1
        else
            tcp_hosts+=("$((10#${BASH_REMATCH[1]}))")
            tcp_targets+=("$((10#${BASH_REMATCH[2]}))")
        fi
    done
    if ((${#ports[@]} == 0)); then
        mode="portless"
    elif ((has_udp == 1)); then
        mode="direct"
    else
        mode="proxied"
    fi
    [[ -n "$health_port" ]] || return 0
    for ((i = 0; i < ${#tcp_hosts[@]}; i++)); do
        if ((tcp_hosts[i] == 10#$health_port)); then
            health_target="${tcp_targets[i]}"
            return 0
        fi
    done
    usage_error "--health-port $health_port is not the host side of a TCP --port mapping; the health check" \
        "reaches the container through one of its published ports"
}

# registry_host REF: prints the registry part of an image reference, or nothing for Docker Hub images.
registry_host() {
    local first="${1%%/*}"
    if [[ "$1" == */* && ("$first" == *.* || "$first" == *:* || "$first" == localhost) ]]; then
        printf '%s\n' "$first"
    fi
}

# ---------------------------------------------------------------------------------------------------------
# Before the swap: docker, registry, images, lock
# ---------------------------------------------------------------------------------------------------------

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

# An image pinned by digest that is already here needs no registry (a rollback, a redeploy).
pull_if_missing() {
    if [[ "$1" == *@sha256:* ]] && dk image inspect "$1" >/dev/null 2>&1; then
        log "$1 is already here"
        return 0
    fi
    dk_noting_error pull "$1"
}

pull_images() {
    step pull
    if ! pull_if_missing "$image"; then
        fail_if_out_of_space "could not pull $image. Container $name was not touched."
        fail "$EXIT_PULL_FAILED" PULL_FAILED "could not pull $image; check the reference" \
            "exists and the instance can reach and read the registry. Container $name was not touched."
    fi
    if [[ "$mode" == proxied ]] && ! pull_if_missing "$proxy_image"; then
        fail_if_out_of_space "could not pull the proxy image $proxy_image. Container $name was not touched."
        fail "$EXIT_PULL_FAILED" PULL_FAILED "could not pull the proxy image $proxy_image; the instance must reach" \
            "its registry (or set PROXY_IMAGE to a copy in yours, pinned by digest). Container $name was not touched."
    fi
}

image_id() {
    dk image inspect --format '{{.Id}}' "$1" 2>/dev/null
}

container_image_id() {
    dk container inspect --format '{{.Image}}' "$1" 2>/dev/null
}

# What the container runs and how: the image's id, the ports and the environment. Two deploys with the same
# fingerprint start identical containers, so the second one has nothing to do.
settings_fingerprint() {
    local id
    id="$(image_id "$image")" || return 1
    {
        printf '%s\n' "berth-handoff-1" "$mode" "$id"
        printf 'port %s\n' ${ports[@]+"${ports[@]}"}
        printf 'env %s\n' ${env_pairs[@]+"${env_pairs[@]}"}
        # Absent run options add nothing: a service that sets none keeps the fingerprint earlier scripts gave it.
        if ((${#run_options[@]} > 0)); then
            printf 'run %s\0' ${run_options[@]+"${run_options[@]}"}
        fi
        if ((${#container_args[@]} > 0)); then
            printf 'arg %s\0' ${container_args[@]+"${container_args[@]}"}
        fi
        # The references, never the values (the fingerprint is a label anyone who runs docker can read).
        if ((${#secret_pairs[@]} > 0)); then
            printf 'secret %s\n' ${secret_pairs[@]+"${secret_pairs[@]}"}
        fi
    } | sha256sum | cut -c 1-64
}

# ---------------------------------------------------------------------------------------------------------
# Secrets by reference: read on this host with the instance profile, handed over in a file only root can read.
# A value lives in a variable of this script, a pipe and that file; never in an argument, the output or a label.
# ---------------------------------------------------------------------------------------------------------

secret_pairs=()
registry_credentials=""
secrets_dir=""
secrets_file=""
registry_logged_in="false"
readonly MAX_SECRETS=50
readonly ARN_HEAD='arn:aws(-[a-z]+)*:'
readonly ARN_PLACE='[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}'
readonly SECRETS_MANAGER_ARN="${ARN_HEAD}secretsmanager:${ARN_PLACE}:secret:[A-Za-z0-9/_+=.@-]{1,512}"
readonly SSM_PARAMETER_ARN="${ARN_HEAD}ssm:${ARN_PLACE}:parameter(/[A-Za-z0-9_.-]{1,1011})+"
readonly SECRET_ARN="^(${SECRETS_MANAGER_ARN}(:[A-Za-z0-9_.@-]{1,256}::)?|${SSM_PARAMETER_ARN})$"

add_secret_pair() {
    local pair="$1" key="${1%%=*}" kept=() existing
    for existing in ${secret_pairs[@]+"${secret_pairs[@]}"}; do
        if [[ "${existing%%=*}" != "$key" ]]; then
            kept+=("$existing")
        fi
    done
    secret_pairs=(${kept[@]+"${kept[@]}"} "$pair")
}

validate_secrets() {
    local pair env_pair
    ((${#secret_pairs[@]} <= MAX_SECRETS)) || usage_error "at most $MAX_SECRETS --secret, not ${#secret_pairs[@]}"
    for pair in ${secret_pairs[@]+"${secret_pairs[@]}"}; do
        [[ "$pair" =~ ^[A-Za-z_][A-Za-z0-9_]{0,127}= && ${#pair} -le 2200 && "${pair#*=}" =~ $SECRET_ARN ]] ||
            usage_error "--secret needs NAME=ARN with NAME a shell identifier and ARN a Secrets Manager secret" \
                "(ARN:JSON_KEY:: for one key) or an SSM parameter"
        for env_pair in ${env_pairs[@]+"${env_pairs[@]}"}; do
            [[ "${env_pair%%=*}" != "${pair%%=*}" ]] ||
                usage_error "${pair%%=*} is both an --env and a --secret: give each variable one source"
        done
    done
    if [[ -n "$registry_credentials" ]] && ! [[ ${#registry_credentials} -le 2048 &&
        "$registry_credentials" =~ ^${SECRETS_MANAGER_ARN}$ ]]; then
        usage_error "--registry-credentials needs the ARN of a whole Secrets Manager secret"
    fi
}

# secret_unreadable WHAT ARN WHY: fails with SECRET_UNREADABLE naming the secret, never its value.
# The names come last: berth's failure message keeps the end of the output.
secret_unreadable() {
    fail "$EXIT_SECRET_UNREADABLE" SECRET_UNREADABLE "$3. The instance profile needs secretsmanager:GetSecretValue" \
        "or ssm:GetParameter on it (and kms:Decrypt on a customer managed key). Container $name was not touched." \
        "Could not read $2 for $1"
}

# make_secrets_dir: a private directory for the env file, in a tmpfs (/run, else /dev/shm) so nothing reaches disk.
make_secrets_dir() {
    local base="${BERTH_SECRETS_DIR:-}" each
    [[ -z "$secrets_dir" ]] || return 0
    if [[ -z "$base" ]]; then
        for each in /run /dev/shm "${TMPDIR:-/tmp}"; do
            if [[ -d "$each" && -w "$each" ]]; then
                base="$each"
                break
            fi
        done
    fi
    # Removed on every way out: on_exit runs for an error, a signal and a normal end alike.
    trap on_exit EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    secrets_dir="$(umask 077 && mktemp -d "${base}/berth-secrets.XXXXXX")" ||
        fail "$EXIT_SECRET_UNREADABLE" SECRET_UNREADABLE "could not make a private directory in $base for the" \
            "secrets; container $name was not touched"
}

remove_secrets() {
    [[ -n "$secrets_dir" ]] || return 0
    rm -rf -- "$secrets_dir"
    secrets_dir=""
    secrets_file=""
}

# json_field KEY: the string (or number) under KEY of the JSON object on stdin; status 1 and no output otherwise.
json_field() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys
try:
    value = json.load(sys.stdin)[sys.argv[1]]
except Exception:
    sys.exit(1)
if isinstance(value, bool) or not isinstance(value, (str, int, float)):
    sys.exit(1)
sys.stdout.write(value if isinstance(value, str) else json.dumps(value))' "$1" 2>/dev/null
    elif command -v jq >/dev/null 2>&1; then
        jq -ej --arg key "$1" '.[$key] | if type == "string" or type == "number" then tostring else error end' \
            2>/dev/null
    else
        printf 'neither python3 nor jq is installed to read a JSON secret\n' >&2
        return 1
    fi
}

# secret_value ARN: the value on stdout (no trailing newline kept); the CLI's error in $secrets_dir/error.
secret_value() {
    local arn="$1" region id key="" secret
    region="${arn#*:*:*:}"
    region="${region%%:*}"
    if [[ "$arn" == arn:*:ssm:* ]]; then
        AWS_PAGER="" aws ssm get-parameter --region "$region" --name "$arn" --with-decryption \
            --query Parameter.Value --output text 2>"$secrets_dir/error"
        return
    fi
    id="$arn"
    if [[ "$arn" =~ ^(.*:secret:[^:]+):([^:]+)::$ ]]; then
        id="${BASH_REMATCH[1]}" key="${BASH_REMATCH[2]}"
    fi
    secret="$(AWS_PAGER="" aws secretsmanager get-secret-value --region "$region" --secret-id "$id" \
        --query SecretString --output text 2>"$secrets_dir/error")" || return 1
    if [[ -z "$key" ]]; then
        printf '%s\n' "$secret"
    elif ! printf '%s' "$secret" | json_field "$key" 2>>"$secrets_dir/error"; then
        printf 'the secret is not a JSON object with a text value under the key %s\n' "$key" >>"$secrets_dir/error"
        return 1
    fi
}

# read_secret WHAT ARN: sets `secret` to the value, or fails with SECRET_UNREADABLE.
read_secret() {
    local why
    command -v aws >/dev/null 2>&1 || secret_unreadable "$1" "$2" "the aws CLI is not installed"
    make_secrets_dir
    if ! secret="$(secret_value "$2")"; then
        why="$(tail -n 2 "$secrets_dir/error" 2>/dev/null | tr -s '\r\n' '  ')"
        secret_unreadable "$1" "$2" "${why:-the aws CLI failed}"
    fi
}

# fetch_secrets: every --secret into the env file that `docker run --env-file` reads. Before anything stops.
fetch_secrets() {
    local pair secret=""
    ((${#secret_pairs[@]} > 0)) || return 0
    step secrets
    make_secrets_dir
    secrets_file="${secrets_dir}/env"
    (umask 077 && : >"$secrets_file")
    for pair in ${secret_pairs[@]+"${secret_pairs[@]}"}; do
        read_secret "the secret ${pair%%=*}" "${pair#*=}"
        # An env file holds one variable a line; Docker reads the rest of the line verbatim.
        [[ "$secret" != *[$'\n\r']* ]] || secret_unreadable "the secret ${pair%%=*}" "${pair#*=}" \
            "its value holds a line break, which an environment variable file cannot carry"
        printf '%s=%s\n' "${pair%%=*}" "$secret" >>"$secrets_file"
    done
    secret=""
    log "read ${#secret_pairs[@]} secret(s) for $name"
}

# login_with_credentials: `docker login` to the image's registry with the --registry-credentials secret.
login_with_credentials() {
    local host secret="" username password
    host="$(registry_host "$image")"
    step login
    read_secret "the registry credentials" "$registry_credentials"
    if ! username="$(printf '%s' "$secret" | json_field username)" ||
        ! password="$(printf '%s' "$secret" | json_field password)"; then
        secret_unreadable "the registry credentials" "$registry_credentials" \
            "the secret must be JSON with the text keys username and password"
    fi
    secret=""
    registry_logged_in="true"
    if ! printf '%s' "$password" | dk login "--username=$username" --password-stdin ${host:+"$host"} >/dev/null; then
        fail "$EXIT_REGISTRY_LOGIN_FAILED" REGISTRY_LOGIN_FAILED "could not log in to ${host:-Docker Hub} with the" \
            "credentials in $registry_credentials; container $name was not touched"
    fi
}

registry_logout() {
    local host
    [[ "$registry_logged_in" == true ]] || return 0
    registry_logged_in="false"
    host="$(registry_host "$image")"
    dk logout ${host:+"$host"} >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------------------
# The proxy: NAME-berth-proxy, haproxy in TCP mode on the host network. Its file, BERTH_STATE_DIR/proxy/NAME/
# haproxy.cfg, is written before every switch, so a restart (a reboot) comes back to what was last routed.
# ---------------------------------------------------------------------------------------------------------

candidate=""
proxy=""
proxy_next=""
proxy_dir=""

# Routes are "backend port" lines, sorted: each public port's backend (port_<HOST>) and the loopback port behind it.

# expected_routes CONTAINER: the routes that send each public TCP port to CONTAINER's loopback port.
expected_routes() {
    local i eph
    for ((i = 0; i < ${#tcp_hosts[@]}; i++)); do
        eph="$(published_port "$1" "${tcp_targets[i]}")" || return 1
        printf 'port_%s %s\n' "${tcp_hosts[i]}" "$eph"
    done | sort
}

# proxy_config ROUTES: haproxy's configuration for them.
proxy_config() {
    local backend port
    printf '%s\n' "# Written by berth's start_container.sh for ${name}; each deploy rewrites it." "global" \
        "    stats socket ${PROXY_SOCKET} mode 600 level admin" "defaults" "    mode tcp" "    timeout connect 5s" \
        "    timeout client 1h" "    timeout server 1h"
    while read -r backend port; do
        printf '%s\n' "frontend ${backend}" "    bind 0.0.0.0:${backend#port_}" "    default_backend ${backend}" \
            "backend ${backend}" "    server app 127.0.0.1:${port}"
    done <<<"$1"
}

proxy_cli() {
    printf '%s\n' "$2" | dk exec -i "$1" socat stdio "UNIX-CONNECT:${PROXY_SOCKET}"
}

# proxy_routes PROXY: the routes the running proxy follows.
proxy_routes() {
    local state fields
    state="$(proxy_cli "$1" "show servers state")" || return 1
    while read -r -a fields; do
        if ((${#fields[@]} > 18)) && [[ "${fields[0]}" =~ ^[0-9]+$ ]]; then
            printf '%s %s\n' "${fields[1]}" "${fields[18]}"
        fi
    done <<<"$state" | sort
}

# routes_match PROXY ROUTES
routes_match() {
    [[ -n "$2" && "$(proxy_routes "$1" 2>/dev/null)" == "$2" ]]
}

# routes_to PROXY CONTAINER: the proxy sends every public port to CONTAINER.
routes_to() {
    local routes
    routes="$(expected_routes "$2")" && routes_match "$1" "$routes"
}

# wait_for_routes PROXY ROUTES
wait_for_routes() {
    local deadline=$((SECONDS + PROXY_WAIT_SECONDS))
    until routes_match "$1" "$2"; do
        if ((SECONDS >= deadline)) || ! container_running "$1"; then
            log "the proxy $1 does not follow the new routes (its logs follow)"
            show_logs "$1"
            return 1
        fi
        sleep 0.2
    done
}

# write_proxy_config ROUTES: atomically, so a proxy that restarts reads either the old file or the new one.
write_proxy_config() {
    local file="${proxy_dir}/haproxy.cfg"
    mkdir -p "$proxy_dir" && proxy_config "$1" >"${file}.tmp" && mv -f "${file}.tmp" "$file"
}

# Root binds the public ports; the socket stays inside; SIGUSR1 is haproxy's graceful stop.
create_proxy() {
    dk create --name "$1" --label "${LABEL_PROXY}=${name}" --network host --restart always --user 0 \
        --stop-signal USR1 -v "${proxy_dir}:${PROXY_CONFIG_DIR}:ro" --entrypoint haproxy "$proxy_image" \
        -W -db -f "${PROXY_CONFIG_DIR}/haproxy.cfg" >/dev/null
}

proxy_image_id=""

proxy_is_current() {
    [[ -n "$proxy_image_id" ]] || proxy_image_id="$(image_id "$proxy_image")"
    local state
    state="$(dk container inspect --format '{{.State.Running}} {{.Image}}' "$proxy" 2>/dev/null)" || return 1
    [[ "$state" == "true $proxy_image_id" ]]
}

# The host ports NAME itself publishes among the public ones: berth's earlier scripts published them directly.
holds_public_ports() {
    local line public
    container_running "$1" || return 1
    while IFS= read -r line; do
        [[ "$line" =~ :([0-9]+)$ ]] || continue
        for public in ${tcp_hosts[@]+"${tcp_hosts[@]}"}; do
            ((public == BASH_REMATCH[1])) && return 0
        done
    done < <(dk port "$1" 2>/dev/null)
    return 1
}

# route_to CONTAINER: make the proxy send every public port to CONTAINER, creating, starting or replacing the
# proxy as needed. The file is written first: whatever happens next, it names a container that was healthy.
route_to() {
    local target="$1" routes commands="" backend port
    routes="$(expected_routes "$target")" && write_proxy_config "$routes" || return 1
    if ! container_running "$proxy"; then
        container_exists "$proxy" || create_proxy "$proxy" || return 1
        if [[ -n "$old_id" ]] && holds_public_ports "$old_id"; then
            log "berth-note: $name publishes its ports itself (berth's earlier scripts); stopping it so the proxy can" \
                "take them: the one gap of the move to the proxy"
            legacy_stopped="$old_id"
            dk stop -t "$stop_timeout" "$old_id" >/dev/null || return 1
        fi
        dk start "$proxy" >/dev/null || return 1
    elif ! proxy_is_current; then
        replace_proxy "$routes" || return 1
    else
        while read -r backend port; do
            commands+="set server ${backend}/app addr 127.0.0.1 port ${port}; "
        done <<<"$routes"
        proxy_cli "$proxy" "$commands" >/dev/null 2>&1 || true
        routes_match "$proxy" "$routes" && return 0
        # Other public ports than the running proxy has: haproxy reloads from the file, and its listening sockets
        # pass to the new process.
        dk kill --signal USR2 "$proxy" >/dev/null || return 1
    fi
    wait_for_routes "$proxy" "$routes"
}

# replace_proxy ROUTES: a new pinned proxy image. The new proxy binds the same ports beside the old one
# (SO_REUSEPORT), then the old one stops gracefully. Connections waiting in its accept queue then may be reset.
replace_proxy() {
    log "replacing the proxy $proxy with $proxy_image"
    remove_owned "$proxy_next" "$LABEL_PROXY"
    if ! create_proxy "$proxy_next" || ! dk start "$proxy_next" >/dev/null || ! wait_for_routes "$proxy_next" "$1"; then
        dk rm -f "$proxy_next" >/dev/null 2>&1 || true
        return 1
    fi
    dk stop -t "$drain_timeout" "$proxy" >/dev/null || true
    dk rm -f "$proxy" >/dev/null && dk rename "$proxy_next" "$proxy"
}

# require_owned CONTAINER LABEL: stop here, before anything changes, if berth did not create CONTAINER for NAME.
require_owned() {
    berth_owns "$1" "$2" "$name" || fail "$EXIT_START_FAILED" START_FAILED "a container named $1 that berth did" \
        "not create for $name is in the way; rename or remove it and deploy again. Nothing was changed."
}

# remove_owned CONTAINER LABEL: remove a container berth created for this service; refuse to touch any other.
remove_owned() {
    container_exists "$1" || return 0
    require_owned "$1" "$2"
    dk rm -f "$1" >/dev/null
}

# ---------------------------------------------------------------------------------------------------------
# The swap
# ---------------------------------------------------------------------------------------------------------

# idle, candidate (started, takes no traffic), switching, routed (takes the traffic), old-stopped (direct mode)
swap_state="idle"
old_id=""
old_ports=()
legacy_stopped=""

# live_container: which of NAME and the candidate takes the traffic now (nothing when neither).
live_container() {
    local each
    if [[ "$mode" == proxied ]] && container_running "$proxy"; then
        for each in "$name" "$candidate"; do
            if container_running "$each" && routes_to "$proxy" "$each"; then
                printf '%s\n' "$each"
                return 0
            fi
        done
        return 0
    fi
    for each in "$name" "$candidate"; do
        if container_running "$each"; then
            printf '%s\n' "$each"
            return 0
        fi
    done
}

# A killed run can leave a candidate (before or after it took the traffic), a proxy file that names it, or a
# half-done proxy replacement. Finish what took traffic, remove what did not.
recover_interrupted() {
    local live removed=0
    if container_exists "$proxy_next"; then
        step recover
        require_owned "$proxy_next" "$LABEL_PROXY"
        if container_exists "$proxy"; then
            dk rm -f "$proxy_next" >/dev/null
        else
            dk rename "$proxy_next" "$proxy"
        fi
    fi
    if container_exists "$candidate"; then
        step recover
        require_owned "$candidate" "$LABEL_SERVICE"
        live="$(live_container)"
        if [[ "$live" == "$candidate" ]]; then
            log "an interrupted deploy had moved traffic to $candidate; finishing it"
            if container_exists "$name"; then
                remember_old
                retire_old
            fi
            dk rename "$candidate" "$name"
        else
            log "removing $candidate, which an interrupted deploy left before it took traffic"
            dk rm -f "$candidate" >/dev/null
            removed=1
        fi
    fi
    # A run killed between writing the proxy's file and switching leaves the file naming the removed candidate.
    if ((removed == 1)) && [[ "$mode" == proxied ]] && container_running "$proxy" && container_running "$name"; then
        if routes_to "$proxy" "$name"; then
            write_proxy_config "$(expected_routes "$name")" || true
        else
            route_to "$name" >/dev/null || true
        fi
    fi
}

# NAME already runs this image with these settings, the proxy routes to it, and it is healthy.
already_current() {
    # A secret's value may have changed since the last deploy, and berth keeps no trace of values to compare.
    ((${#secret_pairs[@]} == 0)) || return 1
    container_running "$name" && [[ "$(label_of "$name" "$LABEL_SETTINGS")" == "$settings_hash" ]] || return 1
    if [[ "$mode" == proxied ]]; then
        proxy_is_current && routes_to "$proxy" "$name" || return 1
    fi
    if ((${#health_cmd[@]} > 0)); then
        run_health_command "$name" >/dev/null 2>&1 || return 1
    fi
    [[ -n "$health_port" ]] || return 0
    probe_http "http://127.0.0.1:$(health_port_of "$name")${health_path}" 2>/dev/null
}

health_port_of() {
    if [[ "$mode" == proxied ]]; then
        published_port "$1" "$health_target"
    else
        printf '%s\n' "$health_port"
    fi
}

remember_old() {
    local target eph
    old_id="$(dk container inspect --format '{{.Id}}' "$name")"
    old_ports=()
    for target in ${tcp_targets[@]+"${tcp_targets[@]}"}; do
        if eph="$(published_port "$old_id" "$target")"; then
            old_ports+=("$eph")
        fi
    done
}

start_candidate() {
    local run_args=(run -d --name "$candidate" --label "${LABEL_SERVICE}=${name}"
        --label "${LABEL_SETTINGS}=${settings_hash}") mapping pair target published=" "
    if [[ -z "$restart_policy" ]]; then
        run_args+=(--restart unless-stopped)
    fi
    # Not in run_options, so not in the settings fingerprint: how long a stop may take is no reason to swap.
    if [[ "$stop_timeout_given" == true ]]; then
        run_args+=("--stop-timeout=$stop_timeout")
    fi
    if [[ "$mode" == proxied ]]; then
        for target in ${tcp_targets[@]+"${tcp_targets[@]}"}; do
            [[ "$published" == *" $target "* ]] || run_args+=(-p "127.0.0.1::${target}")
            published+="$target "
        done
    else
        for mapping in ${ports[@]+"${ports[@]}"}; do
            run_args+=(-p "$mapping")
        done
    fi
    for pair in ${env_pairs[@]+"${env_pairs[@]}"}; do
        run_args+=(-e "$pair")
    done
    if [[ -n "$secrets_file" ]]; then
        run_args+=("--env-file=$secrets_file")
    fi
    # Options end at the image: what follows it is the container's own argv, whatever it looks like.
    run_args+=(${run_options[@]+"${run_options[@]}"} "$image" ${container_args[@]+"${container_args[@]}"})
    step start
    swap_state="candidate"
    if engine_error="$(dk "${run_args[@]}" 2>&1 >/dev/null)"; then
        remove_secrets
        return 0
    fi
    remove_secrets
    printf '%s\n' "$engine_error" >&2
    log "docker run failed for $image"
    container_exists "$candidate" && show_logs "$candidate"
    if out_of_space; then
        prune_images || true
        give_up "$EXIT_NO_SPACE" NO_SPACE "no space left on device to start $image; pruned older images of $name," \
            "the retry may fit"
    fi
    give_up "$EXIT_START_FAILED" START_FAILED "the new container did not start (see above)"
}

check_candidate() {
    local port="" deadline=$((SECONDS + health_timeout))
    step health
    if [[ -n "$health_port" ]] && ! port="$(health_port_of "$candidate")"; then
        log "$candidate publishes no port for its health check"
    elif wait_healthy "$candidate" "$port" "$health_path" "$health_timeout" "$health_interval" &&
        wait_command_healthy "$candidate" "$deadline" "$health_interval"; then
        return 0
    fi
    show_logs "$candidate"
    give_up "$EXIT_HEALTH_FAILED_RESTORED" HEALTH_FAILED_RESTORED "$image failed its health check (logs above)"
}

# give_up CODE NAME MESSAGE: undo the swap and exit; the code says whether the old container still serves.
give_up() {
    local code="$1" code_name="$2"
    shift 2
    if abandon_candidate; then
        fail "$code" "$code_name" "$*; the previous container $name is serving"
    fi
    if [[ "$code" == "$EXIT_HEALTH_FAILED_RESTORED" ]]; then
        code="$EXIT_HEALTH_FAILED_NOT_RESTORED" code_name="HEALTH_FAILED_NOT_RESTORED"
    fi
    fail "$code" "$code_name" "$*; there was no previous container to keep serving, so $name is DOWN"
}

# Removes the candidate and puts back whatever stopped for it. Returns 1 when no previous container serves.
abandon_candidate() {
    local was="$swap_state"
    step restore
    swap_state="idle"
    if container_exists "$candidate" && berth_owns "$candidate" "$LABEL_SERVICE" "$name"; then
        dk rm -f "$candidate" >/dev/null 2>&1 || true
    fi
    if [[ -z "$old_id" ]]; then
        # A first deploy whose proxy would not start: do not leave it restarting with nothing behind it.
        if [[ "$was" == switching ]] && container_exists "$proxy" && berth_owns "$proxy" "$LABEL_PROXY" "$name"; then
            dk rm -f "$proxy" >/dev/null 2>&1 || true
        fi
        return 1
    fi
    if [[ -n "$legacy_stopped" ]]; then
        dk rm -f "$proxy" >/dev/null 2>&1 || true
        legacy_stopped=""
    fi
    if ! container_running "$old_id"; then
        dk start "$old_id" >/dev/null 2>&1 || true
    fi
    container_running "$old_id" || return 1
    if [[ "$mode" == proxied ]] && container_exists "$proxy" && ! holds_public_ports "$old_id"; then
        route_to "$name" >/dev/null || return 1
    fi
    log "the previous container $name is serving"
}

switch_traffic() {
    [[ "$mode" == proxied ]] || return 0
    step switch
    swap_state="switching"
    if ! route_to "$candidate"; then
        give_up "$EXIT_PROXY_FAILED" PROXY_FAILED "the proxy $proxy could not be started or switched (see above)"
    fi
    log "the proxy sends ${name}'s ports to the new container"
    swap_state="routed"
}

# open_connections PORT...: connections from this host to 127.0.0.1:PORT that are open or opening.
open_connections() {
    local count=0 port hex fields wanted=" " table=""
    for port in "$@"; do
        printf -v hex '0100007F:%04X' "$port"
        wanted+="$hex "
    done
    # Read in one go: line by line, each of bash's one-byte reads makes the kernel format the table again.
    table="$(cat /proc/net/tcp 2>/dev/null)" || true
    while read -r -a fields; do
        if [[ "${fields[3]:-}" == 0[12] && "$wanted" == *" ${fields[2]:-} "* ]]; then
            count=$((count + 1))
        fi
    done <<<"$table"
    printf '%s\n' "$count"
}

# Waits until no connection to the old container is open at two looks in a row (or --drain-timeout), then stops
# it: requests in flight when traffic moved finish first.
retire_old() {
    local deadline=$((SECONDS + drain_timeout)) quiet=0 open
    [[ -n "$old_id" ]] || return 0
    step drain
    if [[ "$mode" == proxied && -z "$legacy_stopped" ]] && ((${#old_ports[@]} > 0)); then
        while true; do
            open="$(open_connections ${old_ports[@]+"${old_ports[@]}"})"
            quiet=$((open == 0 ? quiet + 1 : 0))
            ((quiet < 2)) || break
            if ((open > 0 && SECONDS >= deadline)); then
                log "$open connection(s) to the old container still open after ${drain_timeout}s; stopping it anyway"
                break
            fi
            sleep 0.2
        done
    fi
    dk stop -t "$stop_timeout" "$old_id" >/dev/null 2>&1 || true
    dk rm -f "$old_id" >/dev/null 2>&1 || warn "could not remove the old container $old_id; remove it by hand"
    log "stopped and removed the old container; its image is kept for rollback"
}

# Direct mode (a UDP port, or the host's network): the old container holds the public ports, so it stops before the
# candidate starts.
stop_old_first() {
    [[ "$mode" == direct ]] || return 0
    if container_exists "$proxy"; then
        remove_owned "$proxy" "$LABEL_PROXY"
    fi
    [[ -n "$old_id" ]] || return 0
    step stop-previous
    if [[ "$network" == host ]]; then
        log "berth-note: a host-network container binds the host's ports itself; stopping $name before its" \
            "successor starts (a gap)"
    else
        log "berth-note: UDP ports cannot pass through the proxy; stopping $name before its successor starts (a gap)"
    fi
    swap_state="old-stopped"
    dk stop -t "$stop_timeout" "$old_id" >/dev/null ||
        give_up "$EXIT_START_FAILED" START_FAILED "could not stop the previous container to free its ports"
}

promote_candidate() {
    step promote
    if [[ "$mode" != proxied ]] && container_exists "$proxy" && berth_owns "$proxy" "$LABEL_PROXY" "$name"; then
        dk rm -f "$proxy" >/dev/null 2>&1 || true
    fi
    swap_state="idle"
    dk rename "$candidate" "$name" ||
        warn "could not rename $candidate to $name; it serves, and the next deploy renames it"
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

# ---------------------------------------------------------------------------------------------------------
# The pulled image against the host: its architecture, and the disk the engine needs (exit codes 24 and 25)
# ---------------------------------------------------------------------------------------------------------

engine_error=""

# dk_noting_error ARGS...: `docker ARGS...` with its output shown, and kept in engine_error when it fails.
dk_noting_error() {
    local status=0 output
    output="$(dk "$@" 2>&1)" || status=$?
    # A one-off run keeps its output for the run's own: a pull that went well says nothing.
    [[ -z "$output" || ("${quiet:-false}" == true && "$status" == 0) ]] || printf '%s\n' "$output"
    ((status == 0)) || engine_error="$output"
    return "$status"
}

out_of_space() {
    [[ "$engine_error" == *[Nn]"o space left on device"* ]]
}

# fail_if_out_of_space MESSAGE: a pull that failed for lack of space prunes this container's older images and exits
# NO_SPACE (remediable: berth retries once); any other failure returns.
fail_if_out_of_space() {
    out_of_space || return 0
    prune_images || true
    fail "$EXIT_NO_SPACE" NO_SPACE "no space left on device: $1 Pruned older images of $name; the retry may fit"
}

# The engine's name for this host's architecture (`uname -m` in Go's words, as image configs and indexes use them).
host_architecture() {
    local machine
    machine="$(uname -m)"
    case "$machine" in
        x86_64 | amd64) printf 'amd64\n' ;;
        aarch64 | arm64) printf 'arm64\n' ;;
        i[3-6]86) printf '386\n' ;;
        armv6* | armv7*) printf 'arm\n' ;;
        *) printf '%s\n' "$machine" ;;
    esac
}

# After the pull, before anything is touched: an image of another architecture would die with `exec format error`.
check_image_architecture() {
    local wanted found
    wanted="$(host_architecture)"
    found="$(dk image inspect --format '{{.Architecture}}' "$image" 2>/dev/null || true)"
    [[ -z "$found" || "$found" == "$wanted" ]] && return 0
    fail "$EXIT_ARCHITECTURE_MISMATCH" ARCHITECTURE_MISMATCH "$image is built for $found but this instance is" \
        "$wanted; build the image for linux/$wanted too (docker buildx --platform). Container $name was not touched."
}

images_file() {
    printf '%s/images/%s\n' "$state_dir" "$name"
}

# An image id as docker (sha256:<hex>) or podman (<hex>) prints it, the same way.
short_id() {
    printf '%s\n' "${1#sha256:}"
}

# record_image: the image NAME now runs goes to the end of its list (one image id a line, oldest first).
record_image() {
    local id file line kept=()
    id="$(short_id "$(image_id "$image")")"
    [[ -n "$id" ]] || return 1
    file="$(images_file)"
    mkdir -p "${file%/*}"
    if [[ -f "$file" ]]; then
        while IFS= read -r line; do
            [[ -n "$line" && "$line" != "$id" ]] && kept+=("$line")
        done <"$file"
    fi
    printf '%s\n' ${kept[@]+"${kept[@]}"} "$id" >"${file}.tmp"
    mv -f "${file}.tmp" "$file"
}

# prune_images: remove the images NAME ran that are not among its last keep_images, nor the running one (NAME's or
# the candidate's), nor the previous one (the next to last recorded: a rollback needs no pull). `docker rmi` without
# -f also refuses an image any container uses. An image that stays (in use elsewhere) keeps its line.
prune_images() {
    local file ids=() kept=() protected=" " id each i count
    file="$(images_file)"
    [[ -f "$file" ]] || return 0
    while IFS= read -r id; do
        [[ -n "$id" ]] && ids+=("$id")
    done <"$file"
    count="${#ids[@]}"
    for each in "$name" "$candidate"; do
        id="$(container_image_id "$each" || true)"
        [[ -z "$id" ]] || protected+="$(short_id "$id") "
    done
    for ((i = 0; i < count; i++)); do
        id="${ids[i]}"
        if ((i >= count - keep_images || i >= count - 2)) || [[ "$protected" == *" $id "* ]]; then
            kept+=("$id")
        elif dk rmi "$id" >/dev/null 2>&1 || ! dk image inspect "$id" >/dev/null 2>&1; then
            log "pruned image $id, which $name ran before"
        else
            kept+=("$id")
        fi
    done
    printf '%s\n' ${kept[@]+"${kept[@]}"} >"${file}.tmp"
    mv -f "${file}.tmp" "$file"
}

finish() {
    printf 'berth-digest: %s\n' "$(image_digest)"
    printf 'berth-result: %s\n' ok
}

on_exit() {
    local code=$?
    remove_secrets
    registry_logout
    case "$swap_state" in
        candidate | switching | old-stopped)
            printf 'error: interrupted during the swap (exit %s); undoing it\n' "$code" >&2
            abandon_candidate >&2 || true
            ;;
        routed)
            printf 'error: interrupted after traffic moved to %s (exit %s); the next deploy finishes\n' \
                "$candidate" "$code" >&2
            ;;
    esac
    exit "$code"
}

# run_one_off: the image runs once (`berth exec`, a deployment's release task), with what a swap would give NAME's
# container (env, secrets, volumes, run options) but no ports and no restart policy, under `timeout`, removed when it
# ends and by name if it overstays. It touches no container of NAME's, so it takes no lock. The script's exit code is
# the run's; berth's own lines go to stderr, and only a failure writes any.
run_one_off() {
    local run_name="${ONE_OFF_PREFIX}${one_off_id}" status=0 option pair run_args
    quiet="true"
    exec 3>&1 1>&2
    check_docker
    if [[ "$image" != *@sha256:* ]] || ! dk image inspect "$image" >/dev/null 2>&1; then
        [[ -z "$ecr_region" ]] || login_registry
        [[ -z "$registry_credentials" ]] || login_with_credentials
    fi
    mode="portless"
    pull_images
    registry_logout
    check_image_architecture
    fetch_secrets
    ensure_network
    run_args=(run --rm --name "$run_name" --label "${LABEL_ONE_OFF}=${name}")
    for pair in ${env_pairs[@]+"${env_pairs[@]}"}; do
        run_args+=(-e "$pair")
    done
    if [[ -n "$secrets_file" ]]; then
        run_args+=("--env-file=$secrets_file")
    fi
    for option in ${run_options[@]+"${run_options[@]}"}; do
        [[ "$option" == --restart=* ]] || run_args+=("$option")
    done
    # The entrypoint's own arguments stay; the one-off command takes the place of the service's --cmd.
    run_args+=("$image" ${entrypoint_args[@]+"${entrypoint_args[@]:1}"} ${one_off_args[@]+"${one_off_args[@]}"})
    timeout --kill-after="$ONE_OFF_KILL_AFTER" "$one_off_timeout" docker "${run_args[@]}" >&3 2>&3 || status=$?
    if ((status == 124 || status == 137)); then
        printf 'berth-exec: stopped after %s seconds\n' "$one_off_timeout" >&3
        dk rm -f "$run_name" >/dev/null 2>&1 || true
    fi
    remove_secrets
    exit "$status"
}

main() {
    parse_args "$@"
    validate_settings
    if [[ -n "$one_off_id" ]]; then
        run_one_off
    fi
    candidate="${name}${CANDIDATE_SUFFIX}"
    proxy="${name}${PROXY_SUFFIX}"
    proxy_next="${proxy}-next"
    proxy_dir="${state_dir}/proxy/${name}"
    check_docker
    if [[ -n "$ecr_region" ]]; then
        login_registry
    fi
    if [[ -n "$registry_credentials" ]]; then
        login_with_credentials
    fi
    pull_images
    registry_logout
    check_image_architecture
    fetch_secrets
    acquire_lock
    settings_hash="$(settings_fingerprint)"
    recover_interrupted
    if already_current; then
        step unchanged
        log "$name already runs $image with these settings and answers its health check; nothing to do"
        finish
        return 0
    fi
    trap on_exit EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    if container_exists "$name"; then
        remember_old
    fi
    ensure_network
    stop_old_first
    start_candidate
    check_candidate
    switch_traffic
    retire_old
    promote_candidate
    record_image || warn "could not record $image among the images of $name"
    prune_images || warn "could not prune the older images of $name"
    finish
}

# Sourced (by stop_container.sh, validate_service.sh): define the functions only.
if ! (return 0 2>/dev/null); then
    main "$@"
fi
