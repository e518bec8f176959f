#!/usr/bin/env bash
# update_postgres.sh — change simulator: makes PostgreSQL produce Debezium change events.
#
# Creates public.my_table (id int primary key, name text, created_at timestamp) if it is missing,
# then runs N rounds; each round inserts a row with a new id (op 'c') and renames an existing row
# (op 'u'), preferring a row other than the one just inserted. What it did goes to stderr.
#
# Usage: scripts/update_postgres.sh [-n N] [--interval SECONDS] [--env RUN_DIR/services.env]
#                                   [--updates-only] [--deletes]
#   -n, --rounds N      rounds to run (default 10)
#   --interval SECONDS  pause between rounds, fractions allowed (default 0)
#   --env FILE          read PG_HOST, PG_PORT, PG_USER, PG_PASSWORD, PG_DB from FILE (shell
#                       assignments, as scripts/services.sh writes them); they override PG* below
#   --updates-only      no inserts: only update existing rows (the table must have rows)
#   --deletes           also delete the lowest-id row each round (op 'd' plus a tombstone)
#
# Connection: the usual libpq variables PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, with
# defaults 127.0.0.1, 5432, postgres, postgres. With docker-compose.yml's stack:
#   PGPASSWORD=postgres scripts/update_postgres.sh -n 100 --interval 0.5
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit "${1:-2}"
}
die() {
  echo "update_postgres: $*" >&2
  exit 1
}
log() { echo "update_postgres: $*" >&2; }

rounds=10
interval=0
env_file=
updates_only=0
deletes=0

while (($# > 0)); do
  case $1 in
    -n | --rounds)
      (($# >= 2)) || die "$1 needs a value"
      rounds=$2
      shift 2
      ;;
    --interval)
      (($# >= 2)) || die "$1 needs a value"
      interval=$2
      shift 2
      ;;
    --env)
      (($# >= 2)) || die "$1 needs a value"
      env_file=$2
      shift 2
      ;;
    --updates-only)
      updates_only=1
      shift
      ;;
    --deletes)
      deletes=1
      shift
      ;;
    -h | --help) usage 0 ;;
    *)
      echo "update_postgres: unknown argument: $1" >&2
      usage 2
      ;;
  esac
done

[[ $rounds =~ ^[0-9]+$ ]] || die "-n wants a non-negative integer, got '$rounds'"
[[ $interval =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--interval wants seconds, got '$interval'"

if [[ -n $env_file ]]; then
  [[ -r $env_file ]] || die "cannot read env file $env_file"
  # The file is ours (scripts/services.sh writes it): plain shell assignments.
  # shellcheck disable=SC1090
  . "$env_file"
  PGHOST=${PG_HOST:-${PGHOST:-}}
  PGPORT=${PG_PORT:-${PGPORT:-}}
  PGUSER=${PG_USER:-${PGUSER:-}}
  PGDATABASE=${PG_DB:-${PGDATABASE:-}}
  if [[ -n ${PG_PASSWORD:-} ]]; then export PGPASSWORD=$PG_PASSWORD; fi
fi
export PGHOST=${PGHOST:-127.0.0.1}
export PGPORT=${PGPORT:-5432}
export PGUSER=${PGUSER:-postgres}
export PGDATABASE=${PGDATABASE:-postgres}

command -v psql >/dev/null || die "psql not found (apt-get install postgresql-client)"

# sql [-v name=value ...] SQL: runs SQL, prints result rows unaligned ('|'-separated). SQL goes
# through stdin, not -c, so psql interpolates the :'name' variables.
sql() {
  local args=()
  while [[ $1 == -v ]]; do
    args+=("$1" "$2")
    shift 2
  done
  psql -X -q -A -t -v ON_ERROR_STOP=1 "${args[@]}" <<<"$1"
}

log "connecting to postgresql://$PGUSER@$PGHOST:$PGPORT/$PGDATABASE"
sql "SET client_min_messages = warning;
     CREATE TABLE IF NOT EXISTS public.my_table (id int PRIMARY KEY, name text, created_at timestamp)" \
  || die "cannot create public.my_table on $PGHOST:$PGPORT"

if ((updates_only)) && [[ $(sql "SELECT count(*) FROM public.my_table") == 0 ]]; then
  die "--updates-only: public.my_table has no rows to update"
fi

for ((round = 1; round <= rounds; round++)); do
  new_id=0
  if ((!updates_only)); then
    # New id = max + 1 inside one statement; the table lock keeps two simulators apart.
    row=$(psql -X -q -A -t -v ON_ERROR_STOP=1 <<'SQL'
BEGIN;
LOCK TABLE public.my_table IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO public.my_table (id, name, created_at)
  SELECT n, 'name-' || n, now() FROM (SELECT coalesce(max(id), 0) + 1 AS n FROM public.my_table) s
  RETURNING id, name;
COMMIT;
SQL
    )
    new_id=${row%%|*}
    log "round $round/$rounds: inserted id=$new_id name=${row#*|}"
  fi

  # Rename a row, preferring one other than the row just inserted (false sorts first).
  # The name always changes: name-<id>-rev-<k> becomes name-<id>-rev-<k+1>.
  row=$(sql -v new_id="$new_id" \
    "UPDATE public.my_table
       SET name = 'name-' || id || '-rev-' || (coalesce(substring(name FROM '-rev-([0-9]+)$')::int, 0) + 1)
       WHERE id = (SELECT id FROM public.my_table ORDER BY id = :new_id, random() LIMIT 1)
       RETURNING id, name")
  if [[ -n $row ]]; then
    log "round $round/$rounds: updated id=${row%%|*} name=${row#*|}"
  else
    log "round $round/$rounds: no row to update"
  fi

  if ((deletes)); then
    row=$(sql -v new_id="$new_id" \
      "DELETE FROM public.my_table
         WHERE id = (SELECT min(id) FROM public.my_table WHERE id <> :new_id) RETURNING id")
    if [[ -n $row ]]; then
      log "round $round/$rounds: deleted id=$row"
    else
      log "round $round/$rounds: no row to delete"
    fi
  fi

  if ((round < rounds)) && [[ $interval != 0 ]]; then sleep "$interval"; fi
done
log "done: $rounds round(s)"
