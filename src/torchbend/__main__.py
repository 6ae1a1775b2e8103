"""``python -m torchbend``: the `torchbend` command."""

from .apps.cli import main

raise SystemExit(main())
