#!/bin/bash
# Session start-up against QEMU alone (see session_start.py). Needs build/machineserver.
set -euo pipefail
cd "$(dirname "$0")"
exec "${PYTHON:-/usr/bin/python3}" session_start.py "${ROUNDS:-20}"
