"""`python -m bqx` is the `bqx` command."""

from bqx.cli.app import main

main()
