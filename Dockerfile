# mcproxy container image: a static binary on distroless, running as nonroot (65532).
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t mcproxy .
# The default config is configs/docker.yaml; mount your own at /etc/mcproxy/mcproxy.yaml.

# Keep GO_VERSION at or above the go line in go.mod (internal/deploytest checks it).
ARG GO_VERSION=1.23

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" \
        -o /out/mcproxy ./cmd/mcproxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mcproxy /mcproxy
COPY configs/docker.yaml /etc/mcproxy/mcproxy.yaml
USER nonroot:nonroot
# 11211: memcached protocol; 9111: admin HTTP (/metrics, /healthz, /readyz).
EXPOSE 11211 9111
ENTRYPOINT ["/mcproxy", "-config", "/etc/mcproxy/mcproxy.yaml"]
