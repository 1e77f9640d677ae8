"""``python -m blocknas.cli``: the same as the ``blocknas`` console script."""

from blocknas.cli import main

main()
