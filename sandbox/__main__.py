"""`python -m sandbox`: serve the four simulated agencies until interrupted."""

from sandbox.run import main

main()
