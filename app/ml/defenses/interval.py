"""Interval bound propagation (Gowal et al. 2018, "On the Effectiveness of Interval Bound Propagation for
Training Verifiably Robust Models"): sound lower and upper bounds on a net's outputs over an L∞ box of inputs.

The box is carried as (lower, upper). An affine layer maps the box's centre through the layer and its radius
through the absolute weights (no bias), which is the exact image of a box under an affine map, widened to a box;
ReLU is monotone, so it maps the two ends. The per-channel normalisation is an affine map with positive scale,
so the bound starts in pixel space: the radius a card reports is in pixel units, like every attack's eps.

The last linear layer is not bounded on its own: the bound is taken directly on the logit differences
z_y - z_j, whose weights are rows W_y - W_j (the "elision" of the last layer into the specification). Bounding
z_y and z_j separately and subtracting would count the shared hidden units twice and give a looser bound.

Every function takes the layer weights in the box's dtype, so a caller can certify in float64 while the net
trains in float32: a margin that is positive by less than float32 rounding is then not claimed as certified.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Box = tuple[Tensor, Tensor]


def input_box(x: Tensor, eps: float | Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> Box:
    """The L∞ ball of radius ``eps`` (a float or one value per image) around ``x``, cut to the pixel bounds."""
    radius = torch.as_tensor(eps, dtype=x.dtype, device=x.device)
    if radius.ndim == 1:
        radius = radius.view(-1, *([1] * (x.ndim - 1)))
    if bool((radius < 0).any()):
        raise ValueError("eps must be non-negative")
    return (x - radius).clamp(*bounds), (x + radius).clamp(*bounds)


def normalise_box(box: Box, mean: Tensor, std: Tensor) -> Box:
    """``(x - mean) / std`` per channel; std > 0 keeps the order of the two ends."""
    lower, upper = box
    mean, std = mean.to(lower.dtype), std.to(lower.dtype)
    return (lower - mean) / std, (upper - mean) / std


def _affine(layer: nn.Module, box: Box) -> Box:
    lower, upper = box
    centre, radius = (upper + lower) / 2, (upper - lower) / 2
    weight = layer.weight.to(lower.dtype)
    bias = None if layer.bias is None else layer.bias.to(lower.dtype)
    if isinstance(layer, nn.Linear):
        centre, radius = F.linear(centre, weight, bias), F.linear(radius, weight.abs())
    else:
        options = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation, "groups": layer.groups}
        centre = F.conv2d(centre, weight, bias, **options)
        radius = F.conv2d(radius, weight.abs(), None, **options)
    return centre - radius, centre + radius


def propagate(layers: nn.Sequential | list[nn.Module], box: Box) -> Box:
    """Bounds on the output of ``layers`` (Conv2d, Linear, ReLU, Flatten, in any order) over ``box``."""
    for layer in layers:
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            box = _affine(layer, box)
        elif isinstance(layer, nn.ReLU):
            box = (box[0].clamp_min(0), box[1].clamp_min(0))
        elif isinstance(layer, nn.Flatten):
            box = (layer(box[0]), layer(box[1]))
        else:
            raise TypeError(f"interval bounds are not implemented for {type(layer).__name__}")
    return box


def split_last_linear(net: nn.Sequential) -> tuple[list[nn.Module], nn.Linear]:
    layers = list(net)
    if not layers or not isinstance(layers[-1], nn.Linear):
        raise TypeError("the net must be an nn.Sequential that ends with a Linear layer")
    return layers[:-1], layers[-1]


def margin_lower_bounds(net: nn.Sequential, box: Box, labels: Tensor) -> Tensor:
    """(B, classes): a lower bound on ``logit[label] - logit[j]`` over ``box`` (in the net's input space), for
    every class j; 0 in the label's own column. The class is certified when every other column is positive."""
    hidden, last = split_last_linear(net)
    lower, upper = propagate(hidden, box)
    centre, radius = (upper + lower) / 2, (upper - lower) / 2
    weight, bias = last.weight.to(lower.dtype), last.bias.to(lower.dtype)
    diff_weight = weight[labels].unsqueeze(1) - weight.unsqueeze(0)  # (B, classes, hidden): rows W_y - W_j
    diff_bias = bias[labels].unsqueeze(1) - bias.unsqueeze(0)
    margin_centre = torch.einsum("bch,bh->bc", diff_weight, centre) + diff_bias
    margin_radius = torch.einsum("bch,bh->bc", diff_weight.abs(), radius)
    return margin_centre - margin_radius


def logit_bounds(net: nn.Sequential, box: Box) -> Box:
    """Lower and upper bounds on every logit over ``box`` (looser than the margins; for tests and display)."""
    return propagate(net, box)
