from equidyn.cli import main

raise SystemExit(main())
