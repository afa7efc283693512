"""``python -m deception_core`` runs the `deception` command."""

from deception_core.cli import main

main()
