# syntax=docker/dockerfile:1
#
# lshub container image. Mirrors .ci/run's toolchain (Rust stable on Debian 12, libpq).
#   docker build -t lshub .
#   docker run --rm -e DATABASE_URL=... -e LSHUB_JWT_SECRET=... -p 8080:8080 lshub
# or, with PostgreSQL alongside: docker compose up --build (see docker-compose.yml).

# ---- build --------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpq-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# Dependencies first, against placeholder sources, so this layer is reused until
# Cargo.toml or Cargo.lock change. A placeholder is made for every target path the manifest
# names (lib, bin, tests, build script), so adding a target does not break this step.
# Afterwards the placeholder build of our own crate is forgotten: the real sources copied
# below may carry older mtimes than its artefacts, and cargo would otherwise keep it.
COPY Cargo.toml Cargo.lock ./
# The patched diesel the manifest's [patch.crates-io] names (vendor/diesel/PATCHED.md).
COPY vendor vendor
RUN set -eux; \
    targets="src/main.rs src/lib.rs $(sed -n 's/^[[:space:]]*\(path\|build\)[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\2/p' Cargo.toml)"; \
    created=""; \
    for f in $targets; do \
        [ -e "$f" ] && continue; \
        mkdir -p "$(dirname "$f")"; \
        case "$f" in */lib.rs) : > "$f" ;; *) echo 'fn main() {}' > "$f" ;; esac; \
        created="$created $f"; \
    done; \
    cargo build --release --locked --bin lshub; \
    rm -f $created; \
    rm -rf target/release/.fingerprint/lshub-* target/release/deps/lshub-* \
           target/release/deps/liblshub-* target/release/lshub target/release/build/lshub-*

# The whole context (filtered by .dockerignore): src/, migrations/ and any data the crate
# embeds at compile time (include_str!, embed_migrations!), openapi/, README.md ...
COPY . .
RUN cargo build --release --locked --bin lshub \
    && install -D -m 0755 target/release/lshub /out/lshub

# ---- run ----------------------------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 lshub \
    && useradd --system --uid 10001 --gid lshub --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin lshub

COPY --from=builder /out/lshub /usr/local/bin/lshub

USER 10001:10001
ENV LSHUB_BIND=0.0.0.0:8080
EXPOSE 8080

# No HEALTHCHECK: the image has no HTTP client; docker-compose.yml waits on the database's.
ENTRYPOINT ["lshub"]
CMD ["serve"]
