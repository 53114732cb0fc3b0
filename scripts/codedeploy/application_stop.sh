#!/usr/bin/env bash
# CodeDeploy ApplicationStop hook: stop the container named in the revision's deploy.env.
set -euo pipefail
hook_dir="$(dirname "$0")"
exec bash "${hook_dir}/../stop_container.sh" --config "${hook_dir}/../../deploy.env"
