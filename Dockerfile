# mcproxy container image: a static binary on distroless, running as nonroot (65532).
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t mcproxy .
#   (make docker does this; the version is the release tag, e.g. v0.1.0)
# The built-in config is configs/docker.yaml, copied to /etc/mcproxy/mcproxy.yaml:
# it names the docker compose services memcached-1..3, which resolve only
# under docker-compose.yml (mcproxy logs "backend address does not resolve"
# for each otherwise).
# Mount your own config *directory* at /etc/mcproxy (read-only is fine), not a
# single file: a single-file bind mount hides in-place edits and keeps the old
# file after an editor's rename, so live reload and SIGHUP would see nothing.

# GO_VERSION is the Go the project is built and tested with (CI's); go.mod
# names only the oldest Go that builds it (its go line; test/deploytest
# checks that this one is not older) and no toolchain line, which would make
# every build elsewhere download a toolchain first.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Build with exactly the image's Go, never a toolchain download.
ENV GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" \
        -o /out/mcproxy ./cmd/mcproxy

# distroless publishes no version tags, only rolling ones (and digests, which
# were not pinned because they could not be checked against the registry
# from where this file was written).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mcproxy /mcproxy
COPY configs/docker.yaml /etc/mcproxy/mcproxy.yaml
USER nonroot:nonroot
# 11211: memcached protocol; 9111: admin HTTP (/metrics, /healthz, /readyz).
EXPOSE 11211 9111
# distroless has no shell or nc: the binary probes itself ("version" on the
# memcached port; the proxy answers it without a backend).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
        CMD ["/mcproxy", "-probe", "127.0.0.1:11211", "-probe-timeout", "3s"]
ENTRYPOINT ["/mcproxy"]
CMD ["-config", "/etc/mcproxy/mcproxy.yaml"]
