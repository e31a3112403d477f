"""`python -m app.cli`: the same `arena` command, for environments without the console script."""

from app.cli import main

main()
