#!/usr/bin/env bash
# test_clickhouse_deadline.sh — a server that answers one byte a second never holds cdcpipe:
# - every request has an overall deadline (--clickhouse-timeout): past it the insert fails as
#   transient and is retried (libcurl's low-speed limit alone never fires on a trickle);
# - SIGTERM during such a request: the request is abandoned when --shutdown-timeout has passed,
#   cdcpipe exits 1 without committing, and the event is inserted by the next run against the
#   real ClickHouse.
# The trickling server is a bare listener in this test (fault injection: it accepts, reads the
# request and answers "HTTP/1.1 200" with a body that comes one byte a second); everything else
# is the real Kafka and ClickHouse.
. "$(dirname "$0")/lib.sh"

TOPIC="deadline_$ID"
ch_db_create
topic_create "$TOPIC" 1
printf '{"id":1}\t{"op":"c","after":{"id":1,"name":"one"}}\n' >"$RUN/one.tsv"
produce "$TOPIC" "$RUN/one.tsv"
cat >"$RUN/noddl.lua" <<'EOF'
function transform(e)
  return { id = e.after.id, name = e.after.name }
end
EOF
ch "CREATE TABLE $DB.t (id UInt32, name String) ENGINE = MergeTree() ORDER BY id" >/dev/null

python3 - "$RUN/trickle.port" "$RUN/trickle.requests" <<'PY' >"$RUN/trickle.log" 2>&1 &
import socket, sys, threading, time
port_file, requests_file = sys.argv[1:3]
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
def serve(conn):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        with open(requests_file, "a") as f:
            f.write(data.split(b"\r\n", 1)[0].decode("latin-1") + "\n")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while True:
            conn.sendall(b"x")
            time.sleep(1)
    except OSError:
        pass
    finally:
        conn.close()
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.getsockname()[1]))
import os
os.rename(port_file + ".tmp", port_file)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PY
trickle_pid=$!
pid=''
cleanup() {
  kill "$trickle_pid" 2>/dev/null || true
  [[ -z $pid ]] || kill -9 "$pid" 2>/dev/null || true
}
trap cleanup EXIT
wait_for "the trickling server" 10 test -s "$RUN/trickle.port"
TRICKLE="http://127.0.0.1:$(cat "$RUN/trickle.port")"

start() { # LOG ARGS...: cdcpipe against the trickling server, in the background ($pid); without
  # the insert ledger, whose table could not be created at start through a server that answers
  # nothing (this test is about the inserts' deadline)
  local log=$1
  shift
  "$BIN" -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_$ID" --database "$DB" --table t --ledger none \
    --clickhouse "$TRICKLE" "$@" "$RUN/noddl.lua" 2>"$RUN/$log" &
  pid=$!
}
exited() { ! kill -0 "$pid" 2>/dev/null; }
stop_within() { # SECONDS: SIGTERM, then the process must be gone within SECONDS; exit status in $rc
  local started=$SECONDS
  kill -TERM "$pid"
  wait_for "cdcpipe to stop" "$1" exited
  rc=0
  wait "$pid" || rc=$?
  pid=''
  stopped_after=$((SECONDS - started))
}

# --clickhouse-timeout: the trickled answer is cut off and the request retried (the first request
# is SELECT version(), asked before the first insert, then the insert itself).
start timeout.log --clickhouse-timeout 2 --shutdown-timeout 2
wait_for "an insert to time out and be retried" 30 grep -q "retrying in" "$RUN/timeout.log"
assert_contains "a trickling answer: the insert times out after --clickhouse-timeout" \
  "no complete answer from ClickHouse at $TRICKLE/ within 2 s (--clickhouse-timeout): Operation timed out after" \
  "$(cat "$RUN/timeout.log")"
requests_at_least() { (($(wc -l <"$RUN/trickle.requests") >= $1)); }
wait_for "the retry to reach the server" 30 requests_at_least 2
pass "  ... and it is sent again"
stop_within 10
assert_eq "  ... SIGTERM: exit 1 (nothing could be inserted)" 1 "$rc"
assert_contains "  ... saying that nothing was committed" "giving up at shutdown, offsets not committed" "$(cat "$RUN/timeout.log")"

# SIGTERM while a request trickles (the default --clickhouse-timeout is far away): abandoned once
# --shutdown-timeout has passed.
: >"$RUN/trickle.requests"
start shutdown.log --shutdown-timeout 2
wait_for "the insert to reach the server" 30 test -s "$RUN/trickle.requests"
stop_within 10
assert_eq "SIGTERM during a trickling insert: exit 1" 1 "$rc"
((stopped_after <= 6)) || fail "stopping took $stopped_after s with --shutdown-timeout 2"
pass "  ... within --shutdown-timeout ($stopped_after s)"
assert_contains "  ... the request abandoned" \
  "request to ClickHouse at $TRICKLE/ abandoned: cdcpipe is stopping or handing partitions over, and --shutdown-timeout has passed; giving up at shutdown, offsets not committed" \
  "$(cat "$RUN/shutdown.log")"

# Nothing was committed: the real ClickHouse gets the event.
rc=0
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_$ID" --database "$DB" --table t \
  --clickhouse "$CLICKHOUSE_URL" "$RUN/noddl.lua" 2>"$RUN/real.log" || rc=$?
assert_eq "against the real ClickHouse: exit 0" 0 "$rc"
assert_contains "  ... the event was not lost" "consumed=1 tombstones=0 filtered=0 dead_lettered=0 events_inserted=1" "$(cat "$RUN/real.log")"
assert_eq "  ... and is in the table" "1	one" "$(ch "SELECT id, name FROM $DB.t FORMAT TabSeparated")"
ch "DROP DATABASE $DB" >/dev/null
finish
