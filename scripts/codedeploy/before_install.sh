#!/usr/bin/env bash
# CodeDeploy BeforeInstall hook: install and start Docker when it is missing.
set -euo pipefail
hook_dir="$(dirname "$0")"
exec bash "${hook_dir}/../install_docker.sh"
