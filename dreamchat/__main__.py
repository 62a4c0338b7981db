from dreamchat.cli import main

raise SystemExit(main())
