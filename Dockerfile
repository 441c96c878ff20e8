# syntax=docker/dockerfile:1
# Static pginflux on distroless, running as an unprivileged user:
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t pginflux .
#   docker run -e DATABASE_URL=postgres://... -p 8089:8089/udp -p 8086:8086 pginflux
#
# The binary is built exactly as `make build` builds it (deploy/deploy_test.go
# checks that the two commands stay the same), for the platform asked for
# (docker buildx build --platform linux/amd64,linux/arm64 ...), compiled on
# the builder's own platform: with CGO_ENABLED=0 Go cross-compiles alone.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ENV GOOS=$TARGETOS GOARCH=$TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/pginflux .

# static: no libc, no shell; nonroot: uid and gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="pginflux" \
      org.opencontainers.image.description="Receives InfluxDB line protocol over UDP and writes each measurement into its own PostgreSQL table" \
      org.opencontainers.image.url="https://github.com/pginflux/pginflux" \
      org.opencontainers.image.source="https://github.com/pginflux/pginflux" \
      org.opencontainers.image.documentation="https://github.com/pginflux/pginflux#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/pginflux /usr/local/bin/pginflux
USER nonroot:nonroot
# 8089/udp: line protocol. 8086: /metrics, /healthz, /readyz, /ping.
ENV PGINFLUX_UDP_ADDRESS=:8089 PGINFLUX_HTTP_ADDRESS=:8086
EXPOSE 8089/udp 8086/tcp
# Distroless has no shell or curl: pginflux checks itself. It reads
# PGINFLUX_HTTP_ADDRESS, so a changed port is followed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/pginflux", "healthcheck"]
# SIGTERM: pginflux writes what it received, for up to --shutdown-timeout
# (30s); give `docker stop` more than that (--stop-timeout=45, or
# stop_grace_period in compose).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/pginflux"]
