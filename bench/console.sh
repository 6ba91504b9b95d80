#!/bin/bash
# Console latency and loss at full speed (see console.py). Needs build/machineserver.
set -euo pipefail
cd "$(dirname "$0")"
exec "${PYTHON:-/usr/bin/python3}" console.py "${ROUNDS:-1000}" "${FLOOD_LINES:-200000}"
