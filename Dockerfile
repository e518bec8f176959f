# cdcpipe image: built on Debian 12, run on debian:12-slim with only the runtime libraries.
#   docker build -t cdcpipe .      (docker-compose.yml builds it as the `cdcpipe` service)
#   docker run --rm -e CDCPIPE_BROKERS=... -e CDCPIPE_CLICKHOUSE_URL=... cdcpipe
FROM debian:12 AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       build-essential cmake pkg-config librdkafka-dev libcurl4-openssl-dev liblua5.4-dev libyajl-dev \
       zlib1g-dev libzstd-dev liblz4-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    && cmake --build build -j"$(nproc)"

FROM debian:12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       librdkafka1 libcurl4 liblua5.4-0 lua-cjson libyajl2 zlib1g libzstd1 liblz4-1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --shell /usr/sbin/nologin cdcpipe
COPY --from=build /src/build/cdcpipe /usr/local/bin/cdcpipe
COPY pipeline.lua /app/pipeline.lua
WORKDIR /app
USER cdcpipe
ENV CDCPIPE_BROKERS=kafka:9092 \
    CDCPIPE_CLICKHOUSE_URL=http://clickhouse:8123 \
    CDCPIPE_TOPICS=pgserver.public.my_table
CMD ["cdcpipe", "/app/pipeline.lua"]
