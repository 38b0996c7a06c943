import sys

from vcbench.cli import main

sys.exit(main())
