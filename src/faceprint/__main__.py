"""``python -m faceprint`` runs the CLI."""

from faceprint.cli.main import main

main()
