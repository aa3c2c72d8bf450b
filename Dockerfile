# syntax=docker/dockerfile:1
# A static keyward binary on distroless, running as an unprivileged user.
#   docker build -t keyward .
#   docker run -p 8080:8080 -v keyward-data:/var/lib/keyward keyward
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=true \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/keyward ./cmd/keyward

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/keyward /usr/local/bin/keyward
# nonroot is uid 65532; the data directory belongs to it.
WORKDIR /var/lib/keyward
USER 65532:65532
ENV KEYWARD_ADDR=0.0.0.0:8080 \
    KEYWARD_DATA_DIR=/var/lib/keyward \
    KEYWARD_LOG_FORMAT=json
VOLUME ["/var/lib/keyward"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/keyward", "probe", "--url", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/keyward"]
CMD ["serve"]
