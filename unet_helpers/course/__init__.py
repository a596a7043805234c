"""Instructor tooling, out of the learner's path: ``build.py`` generates ``exercises/`` from
``solutions/`` (``make exercises``); ``progress.py`` runs a learner's exercise notebooks without
changing them and prints what is done (``python -m unet_helpers progress``)."""
