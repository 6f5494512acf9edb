"""``python -m curation_assets.cli``: the same as the ``curation`` command."""

from curation_assets.cli import main

raise SystemExit(main())
