#!/bin/bash
# 100 idle QEMU sessions: memory per session, then wrk on /health and
# /api/v1/sessions (see sessions100.py). Needs build/machineserver and wrk.
set -euo pipefail
cd "$(dirname "$0")"
exec "${PYTHON:-/usr/bin/python3}" sessions100.py "${SESSIONS:-100}" "${WRK_SECONDS:-10}"
