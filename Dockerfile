# syntax=docker/dockerfile:1
# The gateway as a small image: built in a Rust image, run from distroless
# (glibc and CA certificates, no shell, no package manager) as a non-root user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin portcullis \
 && strip target/release/portcullis

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
COPY deploy/container/portcullis.toml /etc/portcullis/portcullis.toml
USER nonroot:nonroot
EXPOSE 8080
# The metrics listener's /healthz, asked by the binary itself: there is no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/portcullis", "healthcheck", "--address", "127.0.0.1:9464"]
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["--config", "/etc/portcullis/portcullis.toml"]
