"""A split-free C2f block that torch-pruning can trace.

ultralytics' C2f splits the output of one 1x1 conv (``cv1``) into two halves with
``chunk``; torch-pruning's dependency graph cannot follow that split. ``C2fSplitFree`` computes
the two halves with two 1x1 convs (``cv0``, ``cv1``) holding the same weights, so outputs are
identical and every channel is prunable. It lives in this importable module because pruned
checkpoints pickle the module class: loading them needs ``yeo.optimize.blocks`` on the path.
"""

from __future__ import annotations

import torch
from torch import nn


class C2fSplitFree(nn.Module):
    """Same computation as ultralytics' C2f, with ``cv1`` split into ``cv0`` and ``cv1``."""

    def __init__(self, cv0: nn.Module, cv1: nn.Module, cv2: nn.Module, m: nn.ModuleList) -> None:
        super().__init__()
        self.cv0, self.cv1, self.cv2, self.m = cv0, cv1, cv2, m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv0(x), self.cv1(x)]
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


def _half_conv(conv: nn.Module, rows: slice) -> nn.Module:
    """A copy of an ultralytics ``Conv`` (conv + BN + act) keeping output channels ``rows``."""
    from ultralytics.nn.modules import Conv

    c = conv.conv
    w = c.weight[rows]
    new = Conv(c.in_channels, w.shape[0], c.kernel_size[0], c.stride[0], g=c.groups)
    new.conv.weight.data.copy_(w)
    bn, new_bn = conv.bn, new.bn
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(new_bn, name).data.copy_(getattr(bn, name)[rows])
    new_bn.eps, new_bn.momentum = bn.eps, bn.momentum
    new_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
    new.act = conv.act
    new.train(conv.training)
    return new


def split_free(block: nn.Module) -> C2fSplitFree:
    """The split-free twin of a C2f block (weights shared for cv2 and m, cv1 split in two)."""
    half = block.c
    new = C2fSplitFree(
        _half_conv(block.cv1, slice(0, half)),
        _half_conv(block.cv1, slice(half, 2 * half)),
        block.cv2,
        block.m,
    )
    for attr in ("f", "i", "type", "np"):  # ultralytics' graph bookkeeping on each layer
        if hasattr(block, attr):
            setattr(new, attr, getattr(block, attr))
    new.train(block.training)
    return new


def replace_c2f(model: nn.Module) -> int:
    """Replace every C2f in ``model`` in place; returns how many were replaced."""
    from ultralytics.nn.modules import C2f

    count = 0
    for name, child in list(model.named_children()):
        if type(child) is C2f:
            setattr(model, name, split_free(child))
            count += 1
        else:
            count += replace_c2f(child)
    return count
