"""``python -m rollcraft.cli``: the command line."""

from rollcraft.cli import main

main()
