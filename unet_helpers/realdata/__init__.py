"""The two real datasets and the libraries the course compares against (``notebooks/09_real_data.ipynb``).

``datasets.py`` ready-made loaders (DSB2018 nuclei, ssTEM), ``download.py`` where the files are
looked for and how they are fetched and verified (``manifests/``), ``prepare.py`` the upstream
archives turned into the course layout, ``weightmap.py`` the U-Net paper's border weight map,
``references.py`` MONAI / segmentation_models_pytorch models and training on one budget,
``evaluation.py`` whole images scored by tiles into one confusion matrix, ``separation.py``
whether narrowly separated objects stay apart in a prediction.
"""
