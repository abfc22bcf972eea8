"""``python -m mailroom``: the same command line as the ``mailroom`` script."""

from mailroom.cli import main

main()
