"""`python -m clusterdns`: the same entry point as the `clusterdns` command."""

from clusterdns.cli import main

raise SystemExit(main())
