#!/usr/bin/env bash
# The domain and application crates must stay free of I/O: no runtime, no
# transport, no ORM, no driver. This fails if any such crate enters their
# (normal, non-dev) dependency tree.
set -euo pipefail
forbidden='^(getrandom|rand|rand_core|tokio|tonic|prost|prost-types|sea-orm|sea-query|sqlx|sqlx-core|redis|lapin|hyper|h2|mio|axum|reqwest|argon2|jsonwebtoken|totp-rs) '
status=0
for crate in gatehouse-domain gatehouse-application; do
  found=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' | sort -u | grep -E "$forbidden" || true)
  if [ -n "$found" ]; then
    echo "layers: $crate depends on I/O crates it must not use:" >&2
    echo "$found" | sed 's/^/  /' >&2
    status=1
  else
    echo "layers: $crate is free of I/O crates"
  fi
done
exit $status
