#!/usr/bin/env bash
# CodeDeploy ValidateService hook: the health check in deploy.env, on its own.
set -euo pipefail
hook_dir="$(dirname "$0")"
exec bash "${hook_dir}/../validate_service.sh" --config "${hook_dir}/../../deploy.env"
