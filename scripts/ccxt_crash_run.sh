#!/bin/sh
# The long crash run of a guarded ccxt bot (tests/system/test_ccxt_crash_restart.py): KILLS
# SIGKILLs (default 1000), shared by ccxt's bitmex class (BitMEX dialect) and its binanceusdm
# class (Binance USD-M dialect), each followed by a restart on the same journal. Prints one
# summary line per dialect; exits non-zero on any doubled, forgotten or unconverged order.
#
#   scripts/ccxt_crash_run.sh [KILLS]
set -eu
cd "$(dirname "$0")/.."
VENUEGUARD_CCXT_CRASH_KILLS="${1:-1000}" exec "${PYTHON:-.venv/bin/python}" -m pytest \
    tests/system/test_ccxt_crash_restart.py -s -q -p no:cacheprovider --timeout=7200
