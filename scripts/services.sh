# Shared by scripts/test and .ci/run: make Postgres and Redis reachable on 127.0.0.1, starting
# or installing them when needed, and export the URLs the tests use.
# shellcheck shell=bash

ARFLOW_TEST_PG_URL="${ARFLOW_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ARFLOW_TEST_REDIS_URL="${ARFLOW_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; return 1; fi
}

apt_install() {
  echo "installing $* with apt-get" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_ok() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && command -v psql >/dev/null && psql "$ARFLOW_TEST_PG_URL" -qtAc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  pg_ok && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql postgresql-client; fi
  command -v psql >/dev/null || apt_install postgresql-client
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  for _ in $(seq 1 30); do (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 1; done
  if ! pg_ok; then
    # A fresh Debian cluster asks for a password over TCP: give the postgres role one.
    as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    ARFLOW_TEST_PG_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
  fi
  pg_ok || { echo "postgres is not reachable at 127.0.0.1:5432" >&2; return 1; }
}

redis_ok() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

ensure_redis() {
  redis_ok && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis_ok && return 0; sleep 0.5; done
  echo "redis is not reachable at 127.0.0.1:6379" >&2
  return 1
}
