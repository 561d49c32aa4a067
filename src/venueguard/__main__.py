from venueguard.cli import main

raise SystemExit(main())
