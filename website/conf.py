"""Sphinx configuration of the course website (built by ``make site`` / ``tools/build_site.py``).

The source folder is a staging copy that ``tools/build_site.py`` assembles in ``_build/site-src``:
the pages of ``website/``, pages made from the README's sections, and the stored, executed
notebooks. Notebooks are rendered as stored and never executed (``nb_execution_mode = "off"``).
"""
from __future__ import annotations

import os

project = "Semantic segmentation with U-Net"
author = "The U-Net course authors"
copyright = "2026, The U-Net course authors (code: MIT; data: see Data licences)"

# Set by tools/build_site.py (from make's COURSE_REPO_URL / COURSE_REPO_BRANCH).
REPO_URL = os.environ.get("COURSE_REPO_URL", "https://github.com/OWNER/unet-course")
BRANCH = os.environ.get("COURSE_REPO_BRANCH", "main")

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# Notebooks: render the stored outputs, never execute.
nb_execution_mode = "off"
nb_merge_streams = True
# A live view stores one output with three representations: the widget view, image/png and
# text/plain. Without saved widget state the widget view cannot render (a browser page has no
# kernel), so it is never chosen: the PNG shows, or the text where there is no PNG.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "U-Net segmentation course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_favicon = "favicon.svg"  # also keeps browsers from asking for a missing /favicon.ico
html_show_sourcelink = False
# The stored figures have white backgrounds: a light page, whatever the reader's system prefers
# (also sets the theme's mode, which is empty otherwise and logs a console error).
html_context = {"default_mode": "light"}
html_theme_options = {
    "repository_url": REPO_URL,
    "repository_branch": BRANCH,
    "path_to_docs": "",  # the staging copy mirrors the repository: notebooks/, exercises/
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
    "home_page_in_toc": True,
    # pydata-sphinx-theme 0.20 adds a header bar with a second search box; the sidebar has one.
    "navbar_persistent": [],
}
