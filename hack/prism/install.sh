#!/usr/bin/env bash
# Installs Prism (@stoplight/prism-cli 5.14.2), the validating proxy of an OpenAPI spec the
# flexiManage contract tests put in front of their fake controller, into hack/prism/node_modules
# from the committed package-lock.json (npm ci). Prints the path of the prism executable.
# 5.14.x runs on Node 20 only with its prism-core/prism-http/prism-http-server pinned (the
# overrides in package.json): their newer releases need Node 24.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin="$here/node_modules/.bin/prism"
if ! "$bin" --version 2>/dev/null | grep -q '^5\.14\.2$'; then
  echo "[prism] installing @stoplight/prism-cli 5.14.2 into $here/node_modules" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
echo "$bin"
