#!/bin/bash
# Virtual odmfuse.sh (fuseline's virtual line): --noburn only; the work is done by vline_odmfuse.py.
# Usage: odmfuse.sh --noburn -i 0x23|0x19 -X fuse.xml --auth NS|PKC|SBKPKC [-k key.pem] [--test] BOARD
# Offline board values come from the environment: FAB BOARDID BOARDSKU BOARDREV CHIPREV (CHIP_SKU on T234);
# jetson-orin-nano-devkit also reads board_sku and board_FAB (the R36.2 quirk).
set -e
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "${here}/vline_odmfuse.py" "$@"
