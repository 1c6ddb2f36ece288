from sipsim.cli import main
raise SystemExit(main())
