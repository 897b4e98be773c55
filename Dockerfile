# cbam-serve container image. Two stages:
#   build   - the official Swift image for our toolchain (6.3, Ubuntu 24.04 "noble") compiles a release binary
#             with the Swift runtime linked in statically (--static-swift-stdlib);
#   runtime - plain ubuntu:24.04, the same OS, so the C libraries the binary was linked against have the
#             same sonames; it gets only their runtime packages, a non-root user and the default model.
#
#   docker build -t cbam-serve .
#   docker run --rm -p 8080:8080 cbam-serve
#
# Settings are CBAM_* environment variables (`cbam-serve serve --help` lists them all).
# Tests/python/test_deploy.py checks this file against the release binary and the server's defaults.

ARG SWIFT_VERSION=6.3.1
ARG UBUNTU_VERSION=24.04

# ---------------------------------------------------------------------------------------------------
FROM swift:${SWIFT_VERSION}-noble AS build

# Unpinned on purpose: the release's archive keeps only the current (security-patched) version of each.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get -q update \
 && apt-get -q install -y --no-install-recommends libopenblas-dev libjpeg-dev libpng-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first: this layer is reused until Package.swift changes.
COPY Package.swift ./
RUN swift package resolve

# SwiftPM loads every target the manifest declares, test targets included, so Tests/ comes along.
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product cbam-serve \
 && install -D -m 0755 "$(swift build -c release --show-bin-path)/cbam-serve" /staging/cbam-serve

# ---------------------------------------------------------------------------------------------------
FROM ubuntu:${UBUNTU_VERSION} AS runtime

LABEL org.opencontainers.image.title="cbam-serve" \
      org.opencontainers.image.description="CBAM-ResNet image classification over HTTP (REST and Open Inference Protocol), with attention maps"

# One package per shared library that `ldd cbam-serve` reports (glibc aside); the test keeps this list honest.
#   libopenblas.so.0 -> libopenblas0-pthread   libgfortran.so.5 -> libgfortran5   libz.so.1      -> zlib1g
#   libjpeg.so.8     -> libjpeg-turbo8         libpng16.so.16   -> libpng16-16t64 libstdc++.so.6 -> libstdc++6
#   libgcc_s.so.1    -> libgcc-s1
# libquadmath.so.0 (x86 only) comes with libgfortran5, which depends on it there; naming it would break arm64.
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get -q update \
 && apt-get -q install -y --no-install-recommends \
        libopenblas0-pthread libgfortran5 \
        libjpeg-turbo8 libpng16-16t64 zlib1g \
        libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 cbam \
 && useradd --system --uid 10001 --gid cbam --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cbam

WORKDIR /opt/cbam-serve
COPY --from=build /staging/cbam-serve /usr/local/bin/cbam-serve
# The default model, at the path `serve` looks for it relative to the working directory (models/<name>).
COPY models ./models
COPY deploy/docker/cbam-healthcheck /usr/local/bin/cbam-healthcheck

USER 10001:10001

# Drain 8 s, not the server's 10: `docker stop` sends SIGKILL 10 s after SIGTERM unless told otherwise.
# (Kubernetes and compose set their own drain and grace period.)
ENV CBAM_HOST=0.0.0.0 \
    CBAM_PORT=8080 \
    CBAM_LOG_LEVEL=info \
    CBAM_DRAIN_TIMEOUT_S=8

EXPOSE 8080

# Liveness only (GET /healthz answers 200 while the process serves); readiness is the orchestrator's job.
# The check is a bash /dev/tcp client: the image needs no curl or wget for it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 CMD ["cbam-healthcheck"]

# The server stops accepting on SIGTERM and drains requests in flight for up to CBAM_DRAIN_TIMEOUT_S.
STOPSIGNAL SIGTERM

ENTRYPOINT ["cbam-serve", "serve"]
