"""Figures: every function returns a ``matplotlib.figure.Figure`` or RGB arrays, never ``plt.show()``.

- ``viz/colors.py``: one colour per class in every lesson, masks and error overlays as RGB arrays,
  legends (``notebooks/05_metrics.ipynb``);
- ``viz/figures.py``: predictions, training curves, IoU bars, the dashboard, the weight map;
- ``viz/playgrounds.py``: the figures of the playgrounds and explorers (``views/widgets``), and the
  stamps of a transposed convolution (``notebooks/02_building_blocks.ipynb``);
- ``viz/diagram.py``: the U-Net figure drawn from a model's configuration (``notebooks/03_unet.ipynb``).
"""
from .colors import (
    class_colormap,
    class_colors,
    class_legend,
    class_names_or_default,
    colorize_mask,
    error_codes,
    error_legend,
    error_overlay,
    overlay_mask,
    to_display_image,
)
from .figures import (
    draw_history,
    draw_iou_bars,
    draw_mask_row,
    figure_to_png,
    new_figure,
    plot_dashboard,
    plot_history,
    plot_iou_bars,
    plot_mask_row,
    plot_message,
    plot_predictions,
    plot_weight_map,
)
from .diagram import plot_unet_diagram, unet_layout
from .playgrounds import (
    plot_loss_playground, plot_metric_playground, plot_tiling, plot_transposed_overlap, plot_upsampling,
    transposed_coverage,
)

__all__ = [
    "class_colormap",
    "class_colors",
    "class_legend",
    "class_names_or_default",
    "colorize_mask",
    "draw_history",
    "draw_iou_bars",
    "draw_mask_row",
    "error_codes",
    "error_legend",
    "error_overlay",
    "figure_to_png",
    "new_figure",
    "overlay_mask",
    "plot_dashboard",
    "plot_history",
    "plot_iou_bars",
    "plot_loss_playground",
    "plot_mask_row",
    "plot_message",
    "plot_metric_playground",
    "plot_predictions",
    "plot_tiling",
    "plot_transposed_overlap",
    "plot_unet_diagram",
    "plot_upsampling",
    "plot_weight_map",
    "to_display_image",
    "transposed_coverage",
    "unet_layout",
]
