"""`python -m firmware_sim` is `firmware-sim`."""

from firmware_sim.cli import main

main()
