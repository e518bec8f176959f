#!/usr/bin/env bash
# scripts/deps.sh — install the Debian 12 packages cdcpipe needs to build, test and run
# its local services (ClickHouse, PostgreSQL, Kafka/Connect via the JVM, kcat, Prometheus for the
# metrics tests), libmicrohttpd (the --metrics endpoint), and clang with
# its runtime libraries (libclang-rt-14-dev holds libFuzzer) for the fuzz build.
#
# Idempotent: asks dpkg which packages are missing and only then runs `apt-get update`
# (once) and `apt-get install`. Prints nothing when everything is already installed.
# Runs as root; otherwise uses sudo.
#
# Usage: scripts/deps.sh
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  librdkafka-dev libcurl4-openssl-dev liblua5.4-dev lua5.4 lua-cjson libyajl-dev libcmocka-dev
  zlib1g-dev libzstd-dev liblz4-dev zstd lz4
  kcat clickhouse-server clickhouse-client postgresql-15
  openjdk-17-jdk-headless maven
  docker-compose clang-format curl python3 time
  clang libclang-rt-14-dev unzip
  libmicrohttpd-dev prometheus
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done

((${#missing[@]} == 0)) && exit 0

if ((EUID == 0)); then
  SUDO=()
else
  SUDO=(sudo)
fi

echo "deps.sh: installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
