import sys

from gpuaas.cli import main

sys.exit(main())
