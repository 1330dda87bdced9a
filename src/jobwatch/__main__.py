from jobwatch.cli import main

raise SystemExit(main())
