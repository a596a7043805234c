"""What the lessons' live views compute, and the views themselves.

``playground.py`` (loss and metric playgrounds, the mask explorer's scores), ``demos.py`` (the
checkerboard of transposed convolutions, tiles and seams), ``tasks.py`` (the task picker),
``ablation.py`` (the U-Net without skips of lesson 03): plain functions, unit-tested without a
browser. ``widgets/`` is the only code that imports ipywidgets.
"""
