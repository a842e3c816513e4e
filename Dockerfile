# GoStream container image.
#
#   docker build -t gostream .
#   docker run --rm -p 9090:9090 -p 8080:8080 gostream
#
# Port 9090 serves gRPC and grpc-web; port 8080 serves the REST gateway (JSON,
# Server-Sent Events, /openapi.json, /healthz). Settings are GOSTREAM_* environment variables (or flags after
# `serve`), as docs/configuration.md lists them.
# The RUN --mount cache needs BuildKit, the default builder of Docker 23 and of
# `docker compose`.

# --- build -------------------------------------------------------------------
# The workspace uses edition 2024 (Rust 1.89 or newer). No protoc is needed: the
# build scripts compile proto/ with protox, in pure Rust.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
# The workspace's other members (crates/*): the generated API, the gateway
# generator, the client, the stores.
COPY crates ./crates
# The manifest names the benchmark, and the binary embeds the web console's
# built bundle (checked in, so no Node.js is needed here).
COPY benches ./benches
COPY web/dist ./web/dist
# The registry and target caches survive between builds, so a rebuild after a
# source change recompiles only GoStream itself, not its dependencies.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin gostream \
    && install -m 0755 target/release/gostream /usr/local/bin/gostream

# --- run ---------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates is left unpinned so that a rebuild picks up Debian's updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# An unprivileged user; /var/lib/gostream is writable by it, for a durable log
# (GOSTREAM_DATA_DIR=/var/lib/gostream, with a volume mounted there).
RUN groupadd --system --gid 10001 gostream \
    && useradd --system --uid 10001 --gid gostream --home-dir /var/lib/gostream \
       --no-create-home --shell /usr/sbin/nologin gostream \
    && install -d -o gostream -g gostream -m 0750 /var/lib/gostream
COPY --from=builder /usr/local/bin/gostream /usr/local/bin/gostream
USER 10001:10001
WORKDIR /var/lib/gostream
ENV GOSTREAM_GRPC_ADDR=0.0.0.0:9090 \
    GOSTREAM_REST_ADDR=0.0.0.0:8080
EXPOSE 9090 8080
ENTRYPOINT ["gostream"]
CMD ["serve"]
