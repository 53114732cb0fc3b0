#!/usr/bin/env bash
# CodeDeploy ApplicationStart hook: pull the image in deploy.env and hand the service over to it, gaplessly.
set -euo pipefail
hook_dir="$(dirname "$0")"
exec bash "${hook_dir}/../start_container.sh" --config "${hook_dir}/../../deploy.env"
