#!/usr/bin/env bash
# Create a bench-only venv with Home Assistant 2024.3.3 (newest release that
# supports Python 3.11) so bench/_ha_baseline.py can measure HA's EventBus as a
# baseline.  Never used by csuhub itself or by its tests.
#
#   CSUHUB_HA_VENV  venv location (default: ~/.cache/csuhub-bench-ha)
#   PYTHON          interpreter to build the venv with (default: python3.11)
#
# Idempotent: if the venv already imports homeassistant (the pinned version) and
# ulid_transform, nothing is done.
set -euo pipefail

VENV="${CSUHUB_HA_VENV:-$HOME/.cache/csuhub-bench-ha}"
PY="${PYTHON:-python3.11}"
HA_VERSION="2024.3.3"
ULID_VERSION="0.9.0"

log() { echo "[setup_ha_env] $*" >&2; }

check_venv() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - "$HA_VERSION" <<'PY' >/dev/null 2>&1
import sys
from homeassistant.const import __version__
import ulid_transform  # the 3.10-only wheel fails here if not rebuilt
ulid_transform.ulid_now()
sys.exit(0 if __version__ == sys.argv[1] else 1)
PY
}

if check_venv; then
    log "venv $VENV already has homeassistant==$HA_VERSION; nothing to do"
    echo "$VENV/bin/python"
    exit 0
fi

command -v "$PY" >/dev/null || { log "error: $PY not found"; exit 1; }
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
    || { log "error: $PY is not Python 3.11 (HA $HA_VERSION needs 3.11..3.12)"; exit 1; }

start=$SECONDS
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv at $VENV with $("$PY" --version 2>&1)"
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
else
    log "reusing existing venv at $VENV"
fi

log "upgrading pip/wheel/setuptools"
"$VENV/bin/python" -m pip install -q --upgrade pip wheel setuptools

log "installing homeassistant==$HA_VERSION (this takes a while)"
"$VENV/bin/python" -m pip install -q "homeassistant==$HA_VERSION"

# ulid-transform 0.9.0 (pinned by HA 2024.3.3) only ships a wheel that does not
# load on 3.11 here; rebuild it from the sdist (needs gcc + Python headers).
log "rebuilding ulid-transform==$ULID_VERSION from source"
"$VENV/bin/python" -m pip install -q --no-binary ulid-transform --force-reinstall \
    --no-deps "ulid-transform==$ULID_VERSION"

if check_venv; then
    log "done in $((SECONDS - start))s: $("$VENV/bin/python" -c 'from homeassistant.const import __version__ as v; print("homeassistant", v)')"
    echo "$VENV/bin/python"
else
    log "error: venv built but homeassistant/ulid_transform do not import:"
    "$VENV/bin/python" -c 'import homeassistant.core, ulid_transform; ulid_transform.ulid_now()' || true
    exit 1
fi
