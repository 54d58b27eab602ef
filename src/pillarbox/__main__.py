"""Allow `python -m pillarbox`."""

from pillarbox.cli import main

raise SystemExit(main())
