# syntax=docker/dockerfile:1

# Pinned toolchain so builds are reproducible; slim still ships gcc and
# libc6-dev, which ring and the bundled SQLite need. build.rs uses protox,
# so no protoc is required.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
# Optional cargo features, e.g. --build-arg FEATURES=otel for OpenTelemetry
# trace export; none by default.
ARG FEATURES=""
# --locked: fail rather than silently resolve different dependency versions.
RUN cargo build --release --locked --features "${FEATURES}" \
    && mkdir -p /out/data

# distroless/cc has glibc, libgcc and CA certificates but no shell or package
# manager: a small attack surface that still runs a dynamically linked binary.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/authd /usr/local/bin/authd
# The embedded common-password list's licenses travel with the binary.
COPY THIRD-PARTY-NOTICES.md /usr/share/doc/authd/
# There is no shell here to mkdir/chown, so the SQLite directory is made in
# the builder and handed to the nonroot user (uid 65532) on copy.
COPY --from=builder --chown=65532:65532 /out/data /data

# Listen on all interfaces: the binary's loopback default is unreachable
# from outside a container.
ENV AUTHD_LISTEN=0.0.0.0:50051
# Embedded SQLite on the volume, so data outlives the container; the key
# that seals its secrets is made beside it (authd.db.secrets-key) unless
# AUTHD_SECRETS_KEY_FILE names one. Override with a postgres:// URL (and a
# secrets key file) to run several instances.
ENV DATABASE_URL=sqlite:///data/authd.db?mode=rwc

VOLUME /data
EXPOSE 50051
# Numeric ids: resolvable without /etc/passwd, and lets Kubernetes
# runAsNonRoot verify the user is not root.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/authd"]
