from vaefrag.cli import main

raise SystemExit(main())
