from tvmc_micro.cli.main import main

raise SystemExit(main())
