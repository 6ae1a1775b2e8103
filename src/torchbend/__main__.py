"""``python -m torchbend``: the `torchbend` command."""

from .cli import main

raise SystemExit(main())
