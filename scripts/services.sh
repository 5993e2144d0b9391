#!/usr/bin/env bash
# Makes sure the services the tests talk to are up: PostgreSQL, Redis and
# RabbitMQ on this machine. Starts any that is down (with the machine's own
# start commands) and fails, naming what is missing, if it cannot.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name port seconds
  for _ in $(seq 1 $(($3 * 2))); do
    if up "$2"; then return 0; fi
    sleep 0.5
  done
  echo "services: $1 did not come up on 127.0.0.1:$2 within $3 s" >&2
  return 1
}

start() { # name port seconds-to-wait command...
  local name=$1 port=$2 seconds=$3; shift 3
  if up "$port"; then
    echo "services: $name is up on 127.0.0.1:$port"
    return 0
  fi
  echo "services: $name is down; starting it: $*"
  if ! "$@"; then
    echo "services: could not start $name; install it or start it by hand, then re-run" >&2
    return 1
  fi
  echo "services: waiting up to $seconds s for $name on 127.0.0.1:$port"
  wait_for "$name" "$port" "$seconds"
  echo "services: $name is up on 127.0.0.1:$port"
}

pg_start() {
  command -v pg_ctlcluster >/dev/null || { echo "services: PostgreSQL is not installed (pg_ctlcluster missing)" >&2; return 1; }
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
}

redis_start() {
  command -v redis-server >/dev/null || { echo "services: Redis is not installed (redis-server missing)" >&2; return 1; }
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

rabbitmq_start() {
  command -v rabbitmq-server >/dev/null || { echo "services: RabbitMQ is not installed (rabbitmq-server missing)" >&2; return 1; }
  rabbitmq-server -detached
}

start PostgreSQL 5432 30 pg_start
start Redis 6379 30 redis_start
# RabbitMQ boots the Erlang VM first and opens 5672 last: 10-20 s is normal.
start RabbitMQ 5672 60 rabbitmq_start
