#!/usr/bin/env bash
# Creates .venv with the pinned stack (requirements.lock) and the system pieces it needs.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS="${PROMO_WHEELS:-/opt/wheels}"
UV_VERSION="0.13.9"

say() { printf '[bootstrap] %s\n' "$*"; }

command -v java >/dev/null || { echo "error: Java 17 is needed by Spark; install a JDK 17 (Debian: apt-get install openjdk-17-jre-headless)." >&2; exit 1; }
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null && [ -z "${PROMO_PG_BIN:-}" ]; then
  echo "error: PostgreSQL server binaries not found; install PostgreSQL 15 (Debian: apt-get install postgresql-15) or set PROMO_PG_BIN." >&2; exit 1
fi

JDBC_JAR="${PROMO_JDBC_JAR:-/usr/share/java/postgresql.jar}"
if [ ! -f "$JDBC_JAR" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing the PostgreSQL JDBC driver for Spark (Debian package libpostgresql-jdbc-java)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpostgresql-jdbc-java >/dev/null
  else
    echo "error: $JDBC_JAR is missing; install Debian's libpostgresql-jdbc-java or set PROMO_JDBC_JAR to a PostgreSQL JDBC jar." >&2; exit 1
  fi
fi

# Debian's docker-compose validates docker-compose.yml against the Compose file format in the tests
# (no Docker engine is needed for that).
if ! command -v docker-compose >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing docker-compose (Compose file validation)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi

# Debian's chromium and its driver run the browser test of the Airflow UI (selenium uses them
# as they are: nothing is downloaded at test time).
if { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing chromium and chromium-driver (browser test of the Airflow UI)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! command -v uv >/dev/null || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  say "installing uv $UV_VERSION"
  python3.11 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
UV="$(python3.11 -c 'import shutil,sys; print(shutil.which("uv") or sys.exit(1))' 2>/dev/null || command -v uv)"

STAMP=.venv/.installed
if [ -f "$STAMP" ] && [ "$STAMP" -nt requirements.lock ] && [ "$STAMP" -nt pyproject.toml ]; then
  say "virtual environment up to date"
  exit 0
fi
say "creating .venv and installing the pinned stack (requirements.lock)"
start=$(date +%s)
[ -x .venv/bin/python ] || "$UV" venv -q --python 3.11 .venv
FIND_LINKS=()
[ -d "$WHEELS" ] && FIND_LINKS=(--find-links "$WHEELS")
"$UV" pip install -q --python .venv/bin/python "${FIND_LINKS[@]}" --compile-bytecode -r requirements.lock
# compat mode puts the project root on sys.path, so packages added later import too
"$UV" pip install -q --python .venv/bin/python --no-deps --config-settings editable_mode=compat -e .
touch "$STAMP"
say "installed in $(( $(date +%s) - start )) s"
