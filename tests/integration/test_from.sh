#!/usr/bin/env bash
# test_from.sh — start positions against a real broker: --from <unix-ms> and --from -<N>s (via
# offsets-for-times) skip older events; --from end skips everything present; --from beginning
# re-reads a group's committed events; the default (committed) on a new group starts at the
# earliest offset, so nothing is skipped.
. "$(dirname "$0")/lib.sh"

TOPIC="from_$ID"
ch_db_create
event() { printf '{"id":%d}\t{"op":"u","after":{"id":%d,"name":"n%d","created_at":1000000}}\n' "$1" "$1" "$1"; }
now_ms() { date +%s%3N; }
clock_past() { (($(now_ms) > $1)); }

{ event 1; event 2; } >"$RUN/a.tsv"
{ event 3; event 4; } >"$RUN/b.tsv"
produce "$TOPIC" "$RUN/a.tsv"
a_done=$(now_ms)
# Let the clock move past batch A (6 s, so that "-4s" below separates A from B).
wait_for "6 s to pass" 30 clock_past $((a_done + 6000))
cut_ms=$(now_ms)
produce "$TOPIC" "$RUN/b.tsv"

ids() { # ARGS...: dry run with a fresh group, print the ids of the rows
  "$BIN" --dry-run --once -q -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_${ID}_$RANDOM" "$@" \
    "$SRC/pipeline.lua" 2>"$RUN/stderr" | sed 's/.*"id":\([0-9]*\).*/\1/' | sort -n | tr '\n' ' '
}
assert_eq "--from <unix-ms> starts at the first event at or after it" "3 4 " "$(ids --from "$cut_ms")"
assert_eq "--from -4s skips events older than 4 seconds" "3 4 " "$(ids --from -4s)"
assert_eq "--from -60s includes both batches" "1 2 3 4 " "$(ids --from -60s)"
assert_eq "--from end skips everything already there" "" "$(ids --from end)"
assert_eq "default (committed) on a new group starts at the earliest offset" "1 2 3 4 " "$(ids)"

run() {
  "$BIN" --once -q -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_$ID" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" "$@" "$SRC/pipeline.lua" 2>"$RUN/stderr" || fail "cdcpipe exited $?: $(cat "$RUN/stderr")"
}
run --from -20s
assert_eq "--from -20s inserts the recent events" "4" "$(ch "SELECT count() FROM $DB.changes")"
run
assert_eq "the group's committed offsets win on the next run" "4" "$(ch "SELECT count() FROM $DB.changes")"
run --from beginning
# With the insert ledger (the default) the events read again are already in ClickHouse: skipped.
assert_eq "--from beginning re-reads the committed events, the ledger keeps them from doubling" "4" \
  "$(ch "SELECT count() FROM $DB.changes")"
assert_contains "  ... they are counted as skipped" "skipped=4" "$(cat "$RUN/stderr")"
run --from beginning --ledger none
assert_eq "--from beginning --ledger none inserts them again (at-least-once)" "8" "$(ch "SELECT count() FROM $DB.changes")"
ch "DROP DATABASE $DB" >/dev/null
finish
