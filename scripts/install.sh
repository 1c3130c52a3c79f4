#!/usr/bin/env bash
# Install csuhub and everything it needs on a fresh Debian/Ubuntu machine.
#
#   ./scripts/install.sh          system packages (as root) + .venv with csuhub
#   ./scripts/install.sh --test   the same, plus test tools and the example plugin
#
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) WITH_TEST=1 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

say() { printf '[install] %s\n' "$*"; }

# System packages: ffmpeg records and makes the simulated cameras. The test
# suite also needs its real peers: network namespaces (iproute2) and the
# GStreamer RTSP server (driven by Debian's python3-gi); Info-ZIP's unzip is a
# second, independent reader of the evidence packages.
APT_PACKAGES=(ffmpeg)
if [ "$WITH_TEST" -eq 1 ]; then
    APT_PACKAGES+=(iproute2 python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
                   gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                   gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-tools
                   unzip sip-tester chromium)
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        say "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "install.sh: missing system packages: ${missing[*]}" >&2
        echo "  run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
    echo "install.sh: csuhub needs Python >= 3.11 ($("$PY" --version 2>&1) found)" >&2
    exit 1
}
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $("$PY" --version 2>&1)"
    "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if [ "$WITH_TEST" -eq 1 ]; then
    say "installing csuhub (editable) with test tools and the example vendor plugin"
    "${PIP[@]}" -e ".[test]" -e ./examples/csuhub-example-vendor
else
    say "installing csuhub (editable)"
    "${PIP[@]}" -e .
fi
if [ "$WITH_TEST" -eq 1 ] && [ ! -x .peers-venv/bin/python ]; then
    # the ipycam virtual ONVIF camera pulls OpenCV: kept out of the project's venv
    say "creating .peers-venv with the ipycam ONVIF camera (test peer)"
    "$PY" -m venv .peers-venv
    .peers-venv/bin/python -m pip install -q --disable-pip-version-check ipycam
fi
say "compiling the panel's translations (babel)"
.venv/bin/python -m csuhub.panel.i18n compile
say "ready: $(.venv/bin/csuhub --version)"
