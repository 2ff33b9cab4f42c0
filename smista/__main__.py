from smista.cli import main

raise SystemExit(main())
