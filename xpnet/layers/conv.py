"""The book's convolution and max-pooling layers, through image patches as columns.

A convolution is one matmul of the filters ``(FN, C*FH*FW)`` with the patches
``(N, C*FH*FW, out_h*out_w)`` of :func:`~xpnet.layers.windows`: the product is already in
``(N, FN, out_h, out_w)`` order, so neither direction transposes, unlike the book's
``(N*out_h*out_w, C*FH*FW)`` im2col (same values, another memory order).
"""

from __future__ import annotations

from typing import Any

from ._common import Layer, operands
from ._im2col import offsets, out_size, overlap_add, unpad, windows

__all__ = ["Convolution", "Pooling"]


class Convolution(Layer):
    """Cross-correlation of ``(N, C, H, W)`` images with ``FN`` filters, plus a bias.

    Parameters
    ----------
    W : array (FN, C, FH, FW)
    b : array (FN,)
    stride, pad : int
        Zero padding ``pad`` on each side, as the book's.

    Attributes
    ----------
    dW, db : arrays
        Gradients of the last backward, ``W``'s and ``b``'s shapes.
    x : array (N, C, H, W)
        The last forward's input.
    col : array (N, C*FH*FW, out_h*out_w)
        Its patches (the transpose of the book's ``col`` per image).
    col_W : array (FN, C*FH*FW)
        The filters as rows (the transpose of the book's ``col_W``).
    """

    x: Any = None
    col: Any = None
    col_W: Any = None
    dW: Any = None
    db: Any = None

    def __init__(self, W: Any, b: Any, stride: int = 1, pad: int = 0) -> None:
        self.W, self.b, self.stride, self.pad = W, b, stride, pad

    def forward(self, x: Any) -> Any:
        """Shape (N, FN, out_h, out_w), ``out_h = (H + 2*pad - FH) // stride + 1``."""
        xp, x = operands(x, self.W)
        self._xp = xp
        fn, c, fh, fw = (int(v) for v in self.W.shape)
        if x.ndim != 4 or int(x.shape[1]) != c:
            raise ValueError(
                f"Convolution: input must have shape (N, {c}, H, W) for filters of shape "
                f"{tuple(self.W.shape)}, got {tuple(x.shape)}"
            )
        n, _, h, w = (int(v) for v in x.shape)
        oh = out_size(h, fh, self.stride, self.pad, "height")
        ow = out_size(w, fw, self.stride, self.pad, "width")
        col = windows(x, fh, fw, self.stride, self.pad)
        col_w = xp.reshape(self.W, (fn, c * fh * fw))
        out = col_w @ col  # (N, FN, P)
        b = self.b[:, None]
        if out.dtype == b.dtype:
            out += b  # our own temporary
        else:
            out = out + b
        self.x, self.col, self.col_W = x, col, col_w
        return xp.reshape(out, (n, fn, oh, ow))

    def backward(self, dout: Any, *, need_dx: bool = True) -> Any:
        """Gradients into :attr:`dW`, :attr:`db`; returns ``dx``, the input's shape.

        ``need_dx=False`` (a first layer, whose input is data) skips ``dx`` and returns
        None: the book computes it and throws it away.
        """
        xp = self._xp
        n, fn = int(dout.shape[0]), int(self.W.shape[0])
        d = xp.reshape(dout, (n, fn, int(self.col.shape[2])))
        self.db = xp.sum(d, axis=(0, 2))
        # (N, FN, K) products summed over the batch: one small matmul per image, no copy
        # of the patches into another order
        dw = xp.sum(d @ xp.matrix_transpose(self.col), axis=0)
        self.dW = xp.reshape(dw, tuple(self.W.shape))
        if not need_dx:
            return None
        _, _, fh, fw = (int(v) for v in self.W.shape)
        dcol = xp.matrix_transpose(self.col_W) @ d  # (N, K, P)
        return overlap_add(dcol, tuple(self.x.shape), fh, fw, self.stride, self.pad)


class Pooling(Layer):
    """Max over ``pool_h x pool_w`` windows, channel by channel.

    Parameters
    ----------
    pool_h, pool_w : int
    stride, pad : int
        Zero padding, as the book's (a padded zero can be a window's maximum).

    Attributes
    ----------
    x : array (N, C, H, W)
        The last forward's input.
    arg_max : int32 array (N, C, out_h, out_w)
        Where each window's maximum is, ``y*pool_w + x`` within the window (the first of
        equal values, as ``argmax``): backward sends the gradient there only.
    """

    x: Any = None
    arg_max: Any = None

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    def forward(self, x: Any) -> Any:
        """Shape (N, C, out_h, out_w), ``out_h = (H + 2*pad - pool_h) // stride + 1``."""
        xp, x = operands(x)
        self._xp = xp
        if x.ndim != 4:
            raise ValueError(f"Pooling: input must have shape (N, C, H, W), got {tuple(x.shape)}")
        parts = offsets(x, self.pool_h, self.pool_w, self.stride, self.pad)
        # elementwise over the window offsets, not a reduction over a short axis of a
        # copy: several times faster (torch's argmax over 4 entries most of all)
        out = parts[0]
        for part in parts[1:]:
            out = xp.maximum(out, part)
        # the first offset holding the maximum: how many offsets come before the first
        # hit (counted with masks; NumPy's where is 2x slower, a stacked argmax 3x)
        found = parts[0] == out
        arg = xp.astype(~found, xp.int32)
        for part in parts[1:-1]:
            found = found | (part == out)
            arg = arg + xp.astype(~found, xp.int32)
        self.x, self.arg_max = x, arg
        return out

    def backward(self, dout: Any) -> Any:
        """``dout`` sent to each window's maximum (summed where windows overlap)."""
        xp = self._xp
        n, c, oh, ow = (int(v) for v in self.arg_max.shape)
        ph, pw, s = self.pool_h, self.pool_w, self.stride
        _, _, h, w = (int(v) for v in self.x.shape)
        # dout where each window's maximum is, one offset at a time (a product with the
        # mask: NumPy's where is 10x slower)
        parts = [dout * xp.astype(self.arg_max == i, dout.dtype) for i in range(ph * pw)]
        if s == ph == pw:  # tiles: interleave, nothing overlaps
            rows = [
                xp.reshape(xp.stack(parts[y * pw : (y + 1) * pw], axis=-1), (n, c, oh, ow * pw))
                for y in range(ph)
            ]
            img = xp.reshape(xp.stack(rows, axis=3), (n, c, oh * ph, ow * pw))
            return unpad(img, h, w, self.pad)
        dcol = xp.reshape(xp.stack(parts, axis=2), (n, c * ph * pw, oh * ow))
        return overlap_add(dcol, tuple(self.x.shape), ph, pw, s, self.pad)
