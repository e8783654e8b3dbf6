#!/usr/bin/env bash
# Make sure Debian's chromium is installed (the browser tests drive it through Playwright). Idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "ensure_chromium: $(chromium --version 2>/dev/null | head -1)"
  exit 0
fi
if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "ensure_chromium: error: chromium is not installed and this user cannot install it." >&2
  echo "  Install it as root: apt-get update && apt-get install -y chromium" >&2
  exit 2
fi
SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: error: chromium is missing and apt-get is not available: install chromium (or Google" >&2
  echo "  Chrome) and put it on PATH as 'chromium', or set W7_CHROMIUM=/path/to/chrome." >&2
  exit 2
fi
echo "ensure_chromium: installing Debian's chromium (about 40 s)"
$SUDO apt-get update -qq >/dev/null || true
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; then
  echo "ensure_chromium: error: 'apt-get install chromium' failed; is Debian's package registry reachable?" >&2
  exit 2
fi
chromium --version
