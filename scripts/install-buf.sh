#!/usr/bin/env bash
# Installs buf (the protobuf linter) into .tools/buf from the npm registry:
# the @bufbuild/buf package ships the binary for this platform.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.75.0
bin=.tools/buf/node_modules/.bin/buf
if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "tools: npm is needed to fetch buf" >&2; exit 1; }
echo "tools: installing buf $VERSION from npm"
mkdir -p .tools/buf
npm install --silent --no-audit --no-fund --prefix .tools/buf "@bufbuild/buf@$VERSION" >/dev/null
echo "tools: installed buf $("$bin" --version)"
