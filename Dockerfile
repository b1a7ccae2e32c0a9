# The image the chart runs: both binaries, on a distroless base, as the
# non-root user 65532 the chart's securityContext names.
#   docker build -t ghcr.io/sluice-dev/sluice:0.1.0 .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd cmd
COPY pkg pkg
COPY certs certs
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/webhook ./cmd/shifter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/webhook /out/shifter /
USER 65532:65532
