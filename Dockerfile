# The opportunist image: a static binary on distroless/static:nonroot.
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t opportunist .
# Without a Docker engine, `make image` builds the same image (same user,
# entrypoint and layout, on an empty base) with go-containerregistry:
# hack/image.

# go1.27.3: its standard library has the fixes go1.26.8's lacks (make vulncheck).
ARG GO_IMAGE=golang:1.27.3
ARG BASE_IMAGE=gcr.io/distroless/static:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: no libc, so the binary runs on a base without one.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-X github.com/opportunist/opportunist/internal/version.Version=${VERSION}" \
      -o /out/opportunist ./cmd/opportunist

FROM ${BASE_IMAGE}
ARG VERSION=dev
ARG REVISION=""
LABEL org.opencontainers.image.title="opportunist" \
      org.opencontainers.image.description="Keeps a Kubernetes cluster filled to a target level with preemptible work and yields room to paid work at once" \
      org.opencontainers.image.source="https://github.com/opportunist/opportunist" \
      org.opencontainers.image.url="https://github.com/opportunist/opportunist" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/opportunist /opportunist
# nonroot in distroless; the chart also sets runAsNonRoot, a read-only root
# filesystem, no privilege escalation and drops every capability.
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/opportunist"]
