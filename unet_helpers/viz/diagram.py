"""The U-Net figure, drawn from a model's actual configuration.

``unet_layout`` reads the stages of a ``UNet`` (or of any model with the same parts: ``inc``,
``downs``, ``ups``, ``head``, such as the no-skip U-Net of lesson 03) and works out the channels
and the spatial size of every stage for one input size; ``plot_unet_diagram`` draws it as the
U-shaped figure: the encoder down the left, the bottleneck at the bottom, the decoder up the
right, a skip arrow wherever a decoder stage takes an encoder map. Change ``base`` or ``depth``
and the drawing changes with the model.

Built in ``notebooks/03_unet.ipynb``; ``python -m unet_helpers.viz.diagram docs/unet_diagram.png``
writes the README's copy.

Shapes: ``C`` channels, ``H, W`` height and width.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch.nn as nn
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..unet import UNet, count_parameters
from .figures import new_figure

KIND_COLORS = {"input": "#EEEEEE", "encoder": "#DBEAFE", "bottleneck": "#FEF3C7", "decoder": "#DCFCE7",
               "head": "#F3E8FF"}
EDGE_COLORS = {"input": "#777777", "encoder": "#2563EB", "bottleneck": "#D97706", "decoder": "#16A34A",
               "head": "#9333EA"}
ARROW_COLORS = {"down": "#2563EB", "up": "#16A34A", "skip": "#6B7280", "head": "#9333EA"}


@dataclass(frozen=True)
class StageBox:
    """One stage of the U: its name in the model, its role, and the shape of its output."""

    name: str  # attribute path in the model: "inc", "downs.0", ..., "ups.0", ..., "head"
    label: str  # what lesson 03 calls it: "inc", "down1", ..., "up1", ..., "head"
    kind: str  # "input", "encoder", "bottleneck", "decoder" or "head"
    level: int  # resolution level: 0 = the input's size, depth = the bottleneck's
    channels: int  # C of the stage's output
    height: int
    width: int
    concat: tuple[int, int] | None = None  # decoder: (skip channels, up-sampled channels) it concatenates


@dataclass(frozen=True)
class UNetLayout:
    """Every stage of a U-Net for one input size, and which encoder map each decoder stage takes."""

    stages: tuple[StageBox, ...]  # input, inc, downs..., ups..., head, in forward order
    skips: tuple[tuple[str, str], ...]  # (encoder stage, decoder stage) pairs
    depth: int
    base: int
    up_mode: str  # "bilinear" or "transpose"
    parameters: int

    def stage(self, name: str) -> StageBox:
        """The stage called ``name`` (``"inc"``, ``"downs.0"``, ``"ups.3"``, ``"head"``...)."""
        for box in self.stages:
            if box.name == name:
                return box
        raise KeyError(f"no stage {name!r}; stages are {[b.name for b in self.stages]}")


def _out_channels(module: nn.Module, name: str) -> int:
    conv = getattr(module, "conv", module)  # Down and Up end in a DoubleConv called conv
    channels = getattr(conv, "out_channels", None)
    if not isinstance(channels, int):
        raise TypeError(f"cannot read the output channels of stage {name!r} ({type(module).__name__}): "
                        "expected a DoubleConv, or a block whose .conv is one")
    return channels


def _up_mode(model: nn.Module) -> str:
    ups = list(model.ups)
    layer = getattr(ups[0], "up", None) if ups else None
    return "transpose" if isinstance(layer, nn.ConvTranspose2d) else "bilinear"


def unet_layout(model: nn.Module, input_size: tuple[int, int] = (256, 256)) -> UNetLayout:
    """Channels and size of every stage of ``model`` for an input of ``input_size``.

    Channels come from the modules themselves (``inc``, each ``Down``, each ``Up``, the 1x1 head),
    sizes from the rule the blocks follow: max-pooling halves each side rounding down, and each
    ``Up`` returns its skip's size. A decoder stage with a ``skip_channels`` attribute takes the
    encoder map of its level; one without (``views.ablation.UpWithoutSkip``) takes none.

    Args:
        model: a ``UNet``, or a model with the same parts (``inc``, ``downs``, ``ups``, ``head``).
        input_size: ``(H, W)`` of the input image.

    Returns:
        A ``UNetLayout``.

    Raises:
        TypeError: ``model`` lacks the parts of a U-Net.
        ValueError: ``input_size`` is not two ints at least ``2**depth``.

    Examples::

        >>> layout = unet_layout(UNet(3, 2, base=8, depth=2), (33, 34))
        >>> [(b.label, b.channels, b.height, b.width) for b in layout.stages[1:]]  # doctest: +NORMALIZE_WHITESPACE
        [('inc', 8, 33, 34), ('down1', 16, 16, 17), ('down2', 32, 8, 8), ('up1', 16, 16, 17),
         ('up2', 8, 33, 34), ('head', 2, 33, 34)]
        >>> layout.stage("ups.0").concat  # the skip's channels + the up-sampled map's
        (16, 32)
        >>> layout.skips
        (('downs.0', 'ups.0'), ('inc', 'ups.1'))
    """
    missing = [part for part in ("inc", "downs", "ups", "head") if not hasattr(model, part)]
    if missing:
        raise TypeError(f"unet_layout needs a U-Net with inc, downs, ups and head; "
                        f"{type(model).__name__} has no {missing}")
    if (not isinstance(input_size, (tuple, list)) or len(input_size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in input_size)):
        raise ValueError(f"input_size must be (H, W), two ints; got {input_size!r}")
    depth = len(model.downs)
    if len(model.ups) != depth:
        raise TypeError(f"a U-Net has as many up stages as down stages; got {depth} downs and {len(model.ups)} ups")
    if min(input_size) < 2**depth:
        raise ValueError(f"input_size {tuple(input_size)} is too small for a depth-{depth} U-Net: each side must be "
                         f"at least 2**{depth} = {2**depth}")
    sizes = [tuple(input_size)]
    for _ in range(depth):
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))  # max-pool 2x2 rounds down
    in_channels = model.inc.in_channels  # DoubleConv keeps its in_channels and out_channels
    stages = [StageBox("input", "input", "input", 0, in_channels, *sizes[0]),
              StageBox("inc", "inc", "encoder", 0, _out_channels(model.inc, "inc"), *sizes[0])]
    for i, down in enumerate(model.downs):
        kind = "bottleneck" if i == depth - 1 else "encoder"
        stages.append(StageBox(f"downs.{i}", f"down{i + 1}", kind, i + 1, _out_channels(down, f"downs.{i}"),
                               *sizes[i + 1]))
    encoder = stages[1:]  # by level: inc, downs.0, ..., the bottleneck
    skips = []
    deeper = encoder[-1].channels
    for j, up in enumerate(model.ups):
        level = depth - 1 - j
        skip_channels = getattr(up, "skip_channels", 0) or 0
        up_channels = deeper // 2 if isinstance(getattr(up, "up", None), nn.ConvTranspose2d) else deeper
        out = _out_channels(up, f"ups.{j}")
        stages.append(StageBox(f"ups.{j}", f"up{j + 1}", "decoder", level, out, *sizes[level],
                               concat=(skip_channels, up_channels) if skip_channels else None))
        if skip_channels:
            skips.append((encoder[level].name, f"ups.{j}"))
        deeper = out
    stages.append(StageBox("head", "head", "head", 0, model.head.out_channels, *sizes[0]))
    return UNetLayout(tuple(stages), tuple(skips), depth, stages[1].channels, _up_mode(model),
                      count_parameters(model))


def _label(box: StageBox) -> str:
    return f"{box.channels} ch\n{box.height}x{box.width}"


def plot_unet_diagram(
    model: nn.Module, input_size: tuple[int, int] = (256, 256), title: str | None = None,
    width: float = 11.0, height: float = 5.5,
) -> Figure:
    """The U-shaped figure of ``model``: one box per stage (channels, height x width), arrows for
    max-pooling, up-sampling, the skip connections and the 1x1 head.

    Boxes grow wider with the channels and taller with the resolution (both on a log scale).

    Args:
        model: a ``UNet`` (or a model with its parts, see ``unet_layout``).
        input_size: ``(H, W)`` of the input the sizes are given for.
        title: the figure's title (default: the configuration and the parameter count).
        width, height: figure size in inches.

    Returns:
        A ``Figure`` (never shown by pyplot; display it or ``fig.savefig(path)``).
    """
    layout = unet_layout(model, input_size)
    depth = layout.depth
    fig = new_figure(width, height)
    ax = fig.subplots()
    ax.set_axis_off()
    widest = max(math.log2(b.channels) for b in layout.stages[1:-1])
    narrowest = min(math.log2(b.channels) for b in layout.stages[1:-1])

    def box_size(box: StageBox) -> tuple[float, float]:
        span = max(widest - narrowest, 1.0)
        w = 0.75 + 0.45 * (math.log2(box.channels) - narrowest) / span if box.kind not in ("input", "head") else 0.8
        h = 1.25 * 0.8**box.level
        return w, h

    step = 1.45  # horizontal distance between neighbouring levels
    centres = {}
    for box in layout.stages:
        if box.kind == "input":
            x = -step
        elif box.kind in ("encoder", "bottleneck"):
            x = box.level * step
        elif box.kind == "decoder":
            x = (2 * depth - box.level) * step
        else:
            x = (2 * depth + 1) * step
        centres[box.name] = (x, -1.6 * box.level)
    fontsize = 8 if depth <= 4 else 6.5
    for box in layout.stages:
        (x, y), (w, h) = centres[box.name], box_size(box)
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                    fc=KIND_COLORS[box.kind], ec=EDGE_COLORS[box.kind], lw=1.2, gid=f"stage:{box.name}"))
        text = {"input": f"input\n{_label(box)}", "head": f"1x1 conv\n{box.channels} classes\n{box.height}x{box.width}"}
        ax.text(x, y, text.get(box.kind, _label(box)), ha="center", va="center", fontsize=fontsize)
        if box.kind not in ("input", "head"):
            ax.text(x, y + h / 2 + 0.06, box.label, ha="center", va="bottom", fontsize=fontsize - 1, color="#555555")
        if box.concat is not None:
            ax.text(x, y - h / 2 - 0.06, f"cat {box.concat[0]} + {box.concat[1]}", ha="center", va="top",
                    fontsize=fontsize - 1.5, color=ARROW_COLORS["skip"])

    def arrow(a: str, b: str, kind: str, style: str = "-|>", dashed: bool = False) -> None:
        (xa, ya), (xb, yb) = centres[a], centres[b]
        wa, _ = box_size(layout.stage(a))
        wb, _ = box_size(layout.stage(b))
        start = (xa + wa / 2, ya) if kind in ("skip", "head") or ya == yb else (xa, ya)
        end = (xb - wb / 2, yb) if kind in ("skip", "head") or ya == yb else (xb, yb)
        if kind == "down":
            start, end = (xa + wa / 2, ya - box_size(layout.stage(a))[1] / 4), (xb - wb / 2, yb)
        elif kind == "up":
            start, end = (xa + wa / 2, ya), (xb - wb / 2, yb - box_size(layout.stage(b))[1] / 4)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=ARROW_COLORS[kind],
                                     lw=1.4, ls="--" if dashed else "-", gid=f"{kind}:{a}->{b}"))

    arrow("input", "inc", "head")
    encoder_names = ["inc"] + [f"downs.{i}" for i in range(depth)]
    for a, b in zip(encoder_names, encoder_names[1:]):
        arrow(a, b, "down")
    decoder_names = [encoder_names[-1]] + [f"ups.{j}" for j in range(depth)]
    for a, b in zip(decoder_names, decoder_names[1:]):
        arrow(a, b, "up")
    for a, b in layout.skips:
        arrow(a, b, "skip", dashed=True)
    arrow(f"ups.{depth - 1}", "head", "head")

    up_text = "transposed conv 2x2, stride 2" if layout.up_mode == "transpose" else "bilinear x2"
    handles = [
        Line2D([], [], color=ARROW_COLORS["down"], lw=2, label="max-pool 2x2, then DoubleConv"),
        Line2D([], [], color=ARROW_COLORS["up"], lw=2,
               label=f"{up_text}, concat the skip, DoubleConv" if layout.skips else f"{up_text}, DoubleConv"),
        Line2D([], [], color=ARROW_COLORS["skip"], lw=2, ls="--",
               label=f"skip connection ({len(layout.skips)} of {depth})"),
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
    xs = [c[0] for c in centres.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.8)
    ax.set_ylim(-1.6 * depth - 0.9, 0.9)
    if title is None:
        name = type(model).__name__
        title = (f"{name}(base={layout.base}, depth={depth}, up_mode={layout.up_mode!r}) on a "
                 f"{layout.stages[0].channels}x{input_size[0]}x{input_size[1]} input: {layout.parameters:,} parameters")
    ax.set_title(title, fontsize=10)
    return fig


def main(argv: list[str] | None = None) -> int:
    """Write the README's diagram: ``python -m unet_helpers.viz.diagram docs/unet_diagram.png``."""
    parser = argparse.ArgumentParser(description="Draw the U-Net diagram of a UNet configuration as a PNG.")
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--base", type=int, default=64, help="channels of the first stage (default 64)")
    parser.add_argument("--depth", type=int, default=4, help="number of down stages (default 4)")
    parser.add_argument("--classes", type=int, default=2, help="number of classes (default 2)")
    parser.add_argument("--size", type=int, default=256, help="input side in pixels (default 256)")
    parser.add_argument("--dpi", type=int, default=110)
    args = parser.parse_args(argv)
    if args.out.suffix.lower() != ".png":
        parser.error(f"the output must be a .png file; got {args.out}")
    model = UNet(3, args.classes, base=args.base, depth=args.depth)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_unet_diagram(model, (args.size, args.size)).savefig(args.out, dpi=args.dpi, facecolor="white")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
