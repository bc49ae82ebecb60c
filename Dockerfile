# syntax=docker/dockerfile:1
# bulwark API image: static Go binary on a small non-root Alpine base (Alpine rather than
# distroless so the compose health check has wget).

# The same Go release as the Makefile's GOTOOLCHAIN (it has standard-library security fixes);
# cmd/api's TestDockerfileToolchain keeps the two equal.
ARG GO_VERSION=1.26.11
FROM golang:${GO_VERSION}-alpine AS build
# VERSION is stamped into the binary (logged at start-up, served by the debug listener);
# make up passes `git describe`.
ARG VERSION=dev
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/api ./cmd/api

FROM alpine:3.22
ARG VERSION=dev
LABEL org.opencontainers.image.title="bulwark-api" org.opencontainers.image.version="${VERSION}"
RUN apk add --no-cache ca-certificates tzdata \
 && addgroup -S -g 10001 bulwark && adduser -S -D -H -u 10001 -G bulwark bulwark
COPY --from=build /out/api /usr/local/bin/bulwark-api
USER 10001:10001
ENV PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=5 \
  CMD wget -q -O /dev/null http://127.0.0.1:8000/api/v1/health/live || exit 1
ENTRYPOINT ["/usr/local/bin/bulwark-api"]
