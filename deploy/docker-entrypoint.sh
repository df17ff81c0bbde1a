#!/bin/sh
# Entry point of the Switchboard image: turn secret files into environment variables, then run the command.
#
# Every regular file in $SWITCHBOARD_SECRETS_DIR (default /run/secrets, where Compose mounts its secrets)
# whose name is an upper-case variable name, such as INGEST_AUTHOR_REF_SECRET or DATABASE_URL, is exported
# as that variable unless the variable is already set; other files (jwt-public-key.pem) are left alone.
# The services read settings only from the environment, so secrets never have to be written into
# compose.yaml. On Kubernetes the Deployments take secrets through secretKeyRef and this loop finds nothing.
# The command is exec'd, so it is PID 1 and receives SIGTERM directly.
set -eu

secrets_dir="${SWITCHBOARD_SECRETS_DIR:-/run/secrets}"
if [ -d "$secrets_dir" ]; then
  for file in "$secrets_dir"/*; do
    [ -f "$file" ] || continue
    name=$(basename "$file")
    case "$name" in
      "" | [0-9]* | *[!A-Z0-9_]*) continue ;;
    esac
    eval "already=\${$name+set}"
    if [ -z "$already" ]; then
      value=$(cat "$file")
      export "$name=$value"
    fi
  done
fi

if [ "$#" -eq 0 ]; then
  cat >&2 <<'USAGE'
usage: <image> python -m services.ingest|services.policy|services.routing|services.metrics
       <image> python -m shared.db.migrations services/<name>/migrations upgrade   (reads DATABASE_URL)
USAGE
  exit 64
fi
exec "$@"
