#!/usr/bin/env bash
# Idempotent setup for `make run` / `make test`: Debian packages (as root) and the .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
APT_PACKAGES=(tshark tcpdump openssh-server iputils-ping iproute2 nftables chromium poppler-utils)
# The command each package provides, to see whether it is already there.
declare -A PROVIDES=([tshark]=tshark [tcpdump]=tcpdump [openssh-server]=/usr/sbin/sshd
                     [iputils-ping]=ping [iproute2]=ip [nftables]=/usr/sbin/nft
                     [chromium]=chromium [poppler-utils]=pdftoppm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    command -v "${PROVIDES[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup: installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: not root, so Debian packages cannot be installed here." >&2
        echo "setup: missing: ${missing[*]}; install them with:" >&2
        echo "    sudo apt-get install --no-install-recommends ${missing[*]}" >&2
        echo "setup: tests that need them will be skipped and say why." >&2
    fi
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: $PYTHON is $("$PYTHON" --version 2>&1); Python >= 3.11 is required" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi

# Allure 3 (npm package `allure`), which `make test` renders allure-results with.
if command -v npm >/dev/null 2>&1; then
    npm_stamp="node_modules/.installed-$({ cat package.json; cat package-lock.json 2>/dev/null || true; } | sha256sum | cut -c1-16)"
    if [ ! -f "$npm_stamp" ]; then
        echo "setup: installing npm packages (Allure 3) into node_modules"
        if [ -f package-lock.json ]; then
            npm ci --no-audit --no-fund --loglevel=error >/dev/null
        else
            npm install --no-audit --no-fund --loglevel=error >/dev/null
        fi
        rm -f node_modules/.installed-*
        touch "$npm_stamp"
    fi
else
    echo "setup: npm not found: the Allure 3 rendering test will be skipped and say why" >&2
fi
