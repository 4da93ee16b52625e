#!/usr/bin/env bash
# Debian packages the test suite needs and PyPI cannot give: a PostgreSQL server (throwaway
# clusters for the store tests), Chromium's headless build (browser tests, driven by
# Playwright), npm (axe-core, the accessibility audit, installed once into the cache), and kcat
# with python3-venv (the associations' clients as the guide sets them up:
# tests/security/test_association_clients.py).
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium-headless-shell >/dev/null 2>&1 || missing+=(chromium-headless-shell)
command -v npm >/dev/null 2>&1 || missing+=(npm)  # axe-core for the accessibility audits
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)  # python3 -m venv
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "ensure-test-packages: installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The postgresql package starts a cluster of its own; the tests start their own throwaway ones.
if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null; then
  $sudo service postgresql stop >/dev/null 2>&1 || true
fi
