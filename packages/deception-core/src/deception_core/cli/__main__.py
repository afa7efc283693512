"""``python -m deception_core.cli`` runs the `deception` command."""

from deception_core.cli import main

main()
