#!/usr/bin/env bash
# Build NeMo Gym's virtualenv (docs/training.md, "The loop with the real NeMo Gym"):
#   scripts/gym_venv.sh [DEST]      DEST defaults to ~/.cache/rollcraft/nemo-gym-0.7.0
# The one recipe, shared with `rollcraft demo --gym` (rollcraft.demo.gym.install_gym_venv):
# uv (pip install uv), any Python 3.13 (python3.13 on PATH or pyenv's newest 3.13.x), nemo-gym 0.7.0
# with its bytecode compiled. It prints the folder; use it as --gym-venv or ROLLCRAFT_GYM_VENV.
set -euo pipefail
python -c '
import sys
from pathlib import Path
from rollcraft.demo.gym import default_gym_venv, install_gym_venv
dest = Path(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] else default_gym_venv()
print(install_gym_venv(dest, log=lambda line: print(line, file=sys.stderr)))
' "${1:-}"
