from elcrec.cli import main

raise SystemExit(main())
