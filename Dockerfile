# tokenwatch in a container: `tokenwatch daemon`, the token file on a volume, the HTTP API
# (with /healthz) on port 8000. Build with `docker build -t tokenwatch .`; run it with
# deploy/docker-compose.yml beside your engine. How to log in from a container:
# docs/running.md, "Containers".

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The manifest names the benches, so they come along; nothing else but the sources.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY assets ./assets
COPY config ./config
COPY benches ./benches
RUN cargo build --release --locked --bin tokenwatch

FROM debian:bookworm-slim
# ca-certificates for the brokers' HTTPS APIs; curl for the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/tokenwatch tokenwatch \
 && mkdir -p /data \
 && chown tokenwatch:tokenwatch /data
COPY --from=build /src/target/release/tokenwatch /usr/local/bin/tokenwatch
USER tokenwatch
# The token file and tokenwatch's own state (backups, logs) live on the /data volume. The
# API listens on the container's own network; publish it on 127.0.0.1 only (see the compose
# file). Listening beyond loopback needs an API key: set TOKENWATCH__SERVER__API_KEY.
ENV TOKENWATCH__TOKEN__PATH=/data/upstox_token.json \
    XDG_STATE_HOME=/data/state \
    TOKENWATCH__SERVER__LISTEN=0.0.0.0:8000 \
    TOKENWATCH__SERVER__ALLOW_REMOTE=true
VOLUME ["/data"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
ENTRYPOINT ["tokenwatch"]
CMD ["daemon"]
