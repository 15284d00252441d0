# syntax=docker/dockerfile:1
# One image, three binaries: api (default), worker and migrate.
#   docker build -t tenantkit .
#   docker run tenantkit                          # api on :8080
#   docker run tenantkit /usr/local/bin/worker
#   docker run tenantkit /usr/local/bin/migrate up
# Tests in deploy/ hold this file to go.mod and cmd/ (Go version, binaries,
# port, health check, non-root user).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first: this layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static binaries (no cgo): they run on distroless/static with no libc.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false -ldflags="-s -w" \
      -o /out/ ./cmd/api ./cmd/worker ./cmd/migrate

# distroless/static: CA certificates, tzdata and a nonroot user (65532), no
# shell and no package manager: nothing to exploit beyond our binaries.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/api /out/worker /out/migrate /usr/local/bin/
# MIT asks for the notice in every copy, images included.
COPY LICENSE /usr/share/doc/tenantkit/LICENSE
USER nonroot:nonroot
ENV HTTP_ADDR=:8080 \
    WORKER_HTTP_ADDR=:9090 \
    LOG_FORMAT=json
# 8080: api (HTTP_ADDR). 9090: worker metrics (WORKER_HTTP_ADDR).
EXPOSE 8080 9090
# No curl in distroless: the api binary checks its own /health. Containers
# running worker or migrate override or disable it (see docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/api", "healthcheck"]
CMD ["/usr/local/bin/api"]
