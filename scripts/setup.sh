#!/usr/bin/env bash
# Installs the Debian packages bimamba needs to build and test, when they are missing. As root it installs
# them; otherwise it prints the exact apt-get command to run and fails.
set -euo pipefail
packages=(cmake g++ make libeigen3-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev ccache)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  echo "setup: missing Debian packages; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
