"""Image worlds for the diffusion backend: labelled datasets (datasets.py, mnist.py), how images
appear online and are scraped back (publish.py), the internet that publishes every block and runs
the curators (internet.py), the curator that calls audit's real detectors (curator.py), the wiring
of an image world (world.py) and sample grids (grids.py)."""
