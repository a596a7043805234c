"""Whole slides: inference whose memory grows with the image's width, not its area.

A wing for practitioners (lesson 08 teaches the tiling it builds on): ``stream.predict_slide``
reads a (Big)TIFF band by band (``read.py``: memory-mapped strips or tile rows; PNG/JPEG above
Pillow's limit with our own size check), runs ``predict_tiled``'s grid and blending on each band,
and writes a resumable partial result and a tiled, pyramidal OME-TIFF (``write.py``).
``folder_stream.predict_files`` predicts a folder while ``DataLoader`` worker processes read the
next images.
"""
