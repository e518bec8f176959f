#!/usr/bin/env bash
# scripts/fetch-jvm-stack.sh — resolve the JVM test stack (Apache Kafka broker + Kafka Connect
# runtime + Debezium PostgreSQL connector plugin) from Maven Central with mvn, into a cache:
#
#   ${CDCPIPE_CACHE:-$HOME/.cache/cdcpipe}/jvm-stack/kafka-<K>_debezium-<D>/{lib,plugins}
#
# lib/ holds the broker, Connect, kafka-tools and the log4j2 SLF4J binding (use `-cp "lib/*"`);
# plugins/debezium-connector-postgres/ is Debezium's plugin archive (use as plugin.path).
# The cache is keyed by the versions (a bump refetches) and checked against the pom's hash;
# an existing complete stack is reused without running mvn. Safe to run concurrently (flock).
# Prints the stack directory on stdout; mvn's output goes to stderr.
#
# Environment: KAFKA_VERSION, DEBEZIUM_VERSION, LOG4J_VERSION override the pinned versions
# below (see docs/local-services.md for why these).
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
DEBEZIUM_VERSION=${DEBEZIUM_VERSION:-3.4.3.Final}
LOG4J_VERSION=${LOG4J_VERSION:-2.24.3}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/jvm-stack/pom.xml"
CACHE=${CDCPIPE_CACHE:-$HOME/.cache/cdcpipe}
STACK="$CACHE/jvm-stack/kafka-${KAFKA_VERSION}_debezium-${DEBEZIUM_VERSION}"
STAMP="$STACK/.complete"
want="$(sha256sum "$POM" | cut -c1-16) log4j-$LOG4J_VERSION"

if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
  echo "$STACK"
  exit 0
fi

mkdir -p "$CACHE/jvm-stack"
exec 9>"$STACK.lock"
flock 9
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then # another process fetched it meanwhile
  echo "$STACK"
  exit 0
fi

echo "fetch-jvm-stack.sh: resolving Kafka $KAFKA_VERSION + Debezium $DEBEZIUM_VERSION with mvn" >&2
build=$(mktemp -d "$CACHE/jvm-stack/.build.XXXXXX")
trap 'rm -rf "$build"' EXIT
cp "$POM" "$build/pom.xml" # keep mvn's target/ out of the source tree
# Debian's Maven 3.8.7 prints bare ESC[0m resets even with -B -q: strip them (pipefail keeps
# mvn's exit status).
mvn -B -q -f "$build/pom.xml" package \
  -Dkafka.version="$KAFKA_VERSION" -Ddebezium.version="$DEBEZIUM_VERSION" \
  -Dlog4j.version="$LOG4J_VERSION" -Dstack.dir="$build/stack" 2>&1 |
  sed -u $'s/\e\\[0m//g; /^$/d' >&2

n=$(find "$build/stack/lib" -name 'slf4j-api-*.jar' | wc -l)
[[ $n == 1 ]] || { echo "fetch-jvm-stack.sh: expected one slf4j-api jar, found $n" >&2; exit 1; }
[[ -f $build/stack/plugins/debezium-connector-postgres/debezium-connector-postgres-$DEBEZIUM_VERSION.jar ]] ||
  { echo "fetch-jvm-stack.sh: Debezium plugin not unpacked" >&2; exit 1; }

rm -rf "$STACK"
mv "$build/stack" "$STACK"
echo "$want" >"$STAMP"
echo "$STACK"
