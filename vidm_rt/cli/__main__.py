"""`python -m vidm_rt.cli`: the same as the `vidm-rt` command."""

from . import main

main()
