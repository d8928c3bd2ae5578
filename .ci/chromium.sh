#!/usr/bin/env bash
# Debian's chromium for the headless report test (tests/unit/test_report.py). Idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium.sh: $(chromium --version 2>/dev/null | head -1); nothing to install"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
