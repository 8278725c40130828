"""``python -m corpusclean``: the ``corpusclean`` command."""

from corpusclean.flows.cli import main

main()
