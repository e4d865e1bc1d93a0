from pyipxe.cli import main

raise SystemExit(main())
