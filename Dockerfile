# modelhost: one image for the churn API server and the training Job.
#   docker build -t churn-api:v1 .        (then: minikube image load churn-api:v1)
#   docker run --rm -p 8000:8000 churn-api:v1

# ---- build: Rust 1.95 (no wasm target: the kernel templates are committed) -------------------
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src

# Dependency layer: manifests and stub sources only, so source edits reuse the compiled crates.
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY host/Cargo.toml host/build.rs host/
COPY models-wasm/abi/Cargo.toml models-wasm/abi/
COPY models-wasm/logreg/Cargo.toml models-wasm/logreg/
COPY models-wasm/trees/Cargo.toml models-wasm/trees/
COPY train/Cargo.toml train/
RUN mkdir -p host/src host/benches models-wasm/abi/src models-wasm/logreg/src models-wasm/trees/src train/src \
    && echo 'fn main() {}' > host/src/main.rs \
    && echo 'fn main() {}' > host/benches/predict.rs \
    && echo 'fn main() {}' > host/benches/instance.rs \
    && touch host/src/lib.rs models-wasm/abi/src/lib.rs models-wasm/logreg/src/lib.rs models-wasm/trees/src/lib.rs train/src/lib.rs \
    && cargo build --release --locked -p modelhost \
    && rm -rf host/src host/benches models-wasm/abi/src models-wasm/logreg/src models-wasm/trees/src train/src

# The real sources, the committed kernel templates (models-wasm/*/template/) among them.
COPY . .
RUN touch host/src/main.rs host/src/lib.rs models-wasm/abi/src/lib.rs models-wasm/logreg/src/lib.rs models-wasm/trees/src/lib.rs train/src/lib.rs \
    && cargo build --release --locked -p modelhost \
    && install -D -m 0755 target/release/modelhost /out/usr/local/bin/modelhost \
    && mkdir -p /out/data/registry /out/data/logs /out/opt/modelhost \
    && cp -r registry /out/opt/modelhost/registry

# ---- runtime: distroless (glibc, CA certs, no shell), non-root -------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot
# The binary and the seed registry stay root-owned (the server only reads them); only the
# data directories belong to the server's user, for `docker run` without volumes.
COPY --from=build /out/usr/local/bin/modelhost /usr/local/bin/modelhost
COPY --from=build /out/opt/modelhost /opt/modelhost
COPY --from=build --chown=65532:65532 /out/data /data
ENV REGISTRY_DIR=/data/registry \
    LOG_DIR=/data/logs \
    PORT=8000 \
    MODELHOST_SEED_DIR=/opt/modelhost/registry
USER 65532:65532
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/modelhost"]
CMD ["serve"]
