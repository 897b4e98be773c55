#!/usr/bin/env bash
# Installs the system libraries the package links (Debian/Ubuntu). Does nothing when they are present.
set -euo pipefail
need=()
for p in libopenblas-dev libjpeg-dev libpng-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
