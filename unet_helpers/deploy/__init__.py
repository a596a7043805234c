"""A trained model leaves PyTorch: ``export.py`` writes ONNX (dynamic batch, height and width;
``python -m unet_helpers export``), ``onnx_runtime.py`` predicts with ONNX Runtime through the same
tiling and blending as ``inference.py`` (``python -m unet_helpers predict --onnx``)."""
