#!/usr/bin/env bash
# CodeDeploy ApplicationStop hook: stops nothing. CodeDeploy runs the PREVIOUS revision's copy of this hook before
# it installs the new one; stopping the container here would leave the service down until ApplicationStart, and
# down for good if the new revision is broken. The old container keeps serving; ApplicationStart hands over to the
# new one only once it is healthy (start_container.sh). To take a service off a host, run stop_container.sh.
set -euo pipefail
printf 'berth-step: %s\n' application-stop
printf '%s %s\n' "ApplicationStop: the running container keeps serving;" \
    "ApplicationStart swaps it once the new one is healthy"
