#!/usr/bin/env bash
# Make sure the system tools the tests need are installed (idempotent):
#   chromium    the browser tests drive it through Playwright (the site offline, the hub journey)
#   bubblewrap  the autograder's sandbox for student code (no network, private filesystem, limits)
#   npm         the site's offline assets and the hub's proxy (checked only: install Node.js yourself)
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || [ -n "${W7_CHROMIUM:-}" ] || missing+=(chromium)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
if ! command -v npm >/dev/null 2>&1; then
  echo "ensure_system: error: npm is missing. Install Node.js 20+ and npm (Debian: apt-get install -y nodejs npm)." >&2
  exit 2
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "ensure_system: chromium, bubblewrap and npm present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "ensure_system: error: missing ${missing[*]} and this user cannot install packages." >&2
    echo "  As root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_system: error: missing ${missing[*]} and apt-get is not available: install them with your package" >&2
  echo "  manager (chromium may also be given as W7_CHROMIUM=/path/to/chrome)." >&2
  exit 2
fi
echo "ensure_system: installing ${missing[*]} from Debian (about a minute)"
$SUDO apt-get update -qq >/dev/null || true
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; then
  echo "ensure_system: error: 'apt-get install ${missing[*]}' failed; is Debian's package registry reachable?" >&2
  exit 2
fi
echo "ensure_system: installed ${missing[*]}"
