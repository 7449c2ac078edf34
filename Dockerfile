# Postern: one image with both binaries. Build: docker build -t postern .
# Run the gateway:   docker run postern serve            (ENTRYPOINT is postern-gateway)
# Run the connector: docker run --entrypoint /usr/local/bin/postern-connector postern run --config ...
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY core core
COPY davxml davxml
COPY davproto davproto
COPY telemetry telemetry
COPY imap imap
COPY gateway gateway
COPY connectors connectors
COPY tests tests
RUN cargo build --release --locked -p postern-gateway -p postern-connector \
 && strip target/release/postern-gateway target/release/postern-connector

# Distroless: glibc and CA certificates, no shell, runs as an unprivileged user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/postern-gateway /usr/local/bin/postern-gateway
COPY --from=build /src/target/release/postern-connector /usr/local/bin/postern-connector
USER nonroot:nonroot
EXPOSE 7443 8080 1143 1587
ENTRYPOINT ["/usr/local/bin/postern-gateway"]
CMD ["serve"]
