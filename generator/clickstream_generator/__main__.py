"""Allow ``python -m clickstream_generator`` as an alias of the ``csgen`` command."""

from clickstream_generator.control.cli import main

raise SystemExit(main())
