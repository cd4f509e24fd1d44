"""Image patches as matrix columns and back, written against the array API.

Two layouts:

* the book's: :func:`im2col` gives ``(N*out_h*out_w, C*filter_h*filter_w)``, one row per
  output position, and :func:`col2im` takes that back to ``(N, C, H, W)``;
* the layers' own: :func:`windows` gives ``(N, C*filter_h*filter_w, out_h*out_w)``, one
  column per output position, so a convolution is one matmul ``W (FN, C*FH*FW) @ cols``
  that lands in ``(N, FN, out_h*out_w)``, already the ``(N, FN, out_h, out_w)`` order of the
  next layer: no transpose on the way forward or back. :func:`overlap_add` is its adjoint.

Neither direction writes into an array: patches are gathered by stacking strided slices,
and the scatter-add of ``col2im`` is done with padding, reshapes and sums, so every library
runs it, immutable JAX arrays included.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import device as device_of

from ._common import namespace_of

#: ``(N, C, H, W)``: the shape of a batch of images.
ImageShape = tuple[int, int, int, int]

__all__ = [
    "col2im",
    "conv_output_size",
    "im2col",
    "offsets",
    "out_size",
    "overlap_add",
    "unpad",
    "windows",
]


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> float:
    """The book's ``(input_size + 2*pad - filter_size) / stride + 1`` (a float, as the book's).

    A non-integer result means the filter does not tile the padded input evenly.
    """
    return (input_size + 2 * pad - filter_size) / stride + 1


def out_size(size: int, filter_size: int, stride: int, pad: int, what: str = "input") -> int:
    """Output positions along one axis (the integer the layers use), checked."""
    if int(stride) != stride or stride < 1 or int(pad) != pad or pad < 0:
        raise ValueError(f"stride must be an integer >= 1 and pad >= 0, got {stride}, {pad}")
    n = (size + 2 * pad - filter_size) // stride + 1
    if n < 1:
        raise ValueError(
            f"a {filter_size}-wide filter does not fit a {what} of size {size} with pad {pad}; "
            "use a smaller filter or more padding"
        )
    return int(n)


def _pad2d(x: Any, pad: int, xp: Any) -> Any:
    """Zeros around the last two axes (the standard has no ``pad``: concatenation)."""
    if pad == 0:
        return x
    n, c, h, w = (int(v) for v in x.shape)
    dev = device_of(x)
    side = xp.zeros((n, c, h, pad), dtype=x.dtype, device=dev)
    x = xp.concat([side, x, side], axis=3)
    cap = xp.zeros((n, c, pad, w + 2 * pad), dtype=x.dtype, device=dev)
    return xp.concat([cap, x, cap], axis=2)


def _check_image(x: Any, name: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")


def offsets(x: Any, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> list[Any]:
    """For each filter offset ``(y, dx)`` in row-major order, the (N, C, out_h, out_w)
    entries of the padded ``x`` under it: strided views, nothing copied but the padding."""
    _check_image(x, "input_data")
    xp = namespace_of(x)
    _, _, h, w = (int(v) for v in x.shape)
    oh = out_size(h, filter_h, stride, pad, "height")
    ow = out_size(w, filter_w, stride, pad, "width")
    img = _pad2d(x, pad, xp)
    return [
        img[:, :, y : y + stride * (oh - 1) + 1 : stride, dx : dx + stride * (ow - 1) + 1 : stride]
        for y in range(filter_h)
        for dx in range(filter_w)
    ]


def windows(x: Any, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> Any:
    """Every ``filter_h x filter_w`` patch of ``x`` as a column.

    Parameters
    ----------
    x : array (N, C, H, W)
    filter_h, filter_w, stride, pad : int
        Zero padding ``pad`` on each side of both spatial axes, as the book's.

    Returns
    -------
    array (N, C*filter_h*filter_w, out_h*out_w), ``x``'s dtype and device
        Entry ``[n, (c*filter_h + y)*filter_w + dx, i*out_w + j]`` is
        ``x_padded[n, c, y + stride*i, dx + stride*j]``.
    """
    parts = offsets(x, filter_h, filter_w, stride, pad)
    xp = namespace_of(x)
    n, c, oh, ow = (int(v) for v in parts[0].shape)
    # stacked in (C, FH, FW) order: one copy of the patches, which is all the book's
    # zeros-then-assign im2col writes too
    cols = xp.stack(parts, axis=2)  # (N, C, FH*FW, OH, OW)
    return xp.reshape(cols, (n, c * filter_h * filter_w, oh * ow))


def overlap_add(
    cols: Any, input_shape: ImageShape, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0
) -> Any:
    """The adjoint of :func:`windows`: add every column back where its patch came from.

    Parameters
    ----------
    cols : array (N, C*filter_h*filter_w, out_h*out_w)
    input_shape : (N, C, H, W)

    Returns
    -------
    array (N, C, H, W), ``cols``' dtype and device
        Where patches overlap their entries are summed; the padding is dropped.

    Notes
    -----
    Without writes, the sum of shifted copies is a reshape trick: a stack of ``k`` rows
    of length ``L``, each padded by ``k*u`` zeros and read back as rows of length
    ``L + (k-1)*u``, has row ``a`` shifted by ``a*u``; summing the rows adds the shifted
    copies. Done once along the width (``u = 1``) and once along the height (``u`` = the
    padded width), after spreading the columns ``stride`` apart with zeros.
    """
    xp = namespace_of(cols)
    n, c, h, w = (int(v) for v in input_shape)
    oh, ow = _check_columns(cols, input_shape, filter_h, filter_w, stride, pad, book=False)
    dev = device_of(cols)
    if stride == filter_h == filter_w:  # windows tile the image: interleave, nothing adds
        a = xp.reshape(cols, (n, c, filter_h, filter_w, oh, ow))
        a = xp.permute_dims(a, (0, 1, 4, 2, 5, 3))
        img = xp.reshape(a, (n, c, oh * stride, ow * stride))
    else:
        a = xp.reshape(cols, (n * c * filter_h, filter_w, oh, ow))
        if stride > 1:  # spread the positions stride apart: zeros after each
            a = _spread(_spread(a, stride, 3, xp), stride, 2, xp)
        lh, lw = int(a.shape[2]), int(a.shape[3])
        wp = lw + filter_w - 1
        a = xp.concat([a, xp.zeros((*a.shape[:3], wp - lw), dtype=a.dtype, device=dev)], axis=3)
        a = _shifted_sum(xp.reshape(a, (n * c * filter_h, filter_w, lh * wp)), 1, xp)
        a = xp.reshape(a[:, : lh * wp], (n * c, filter_h, lh * wp))
        img = xp.reshape(_shifted_sum(a, wp, xp), (n, c, lh + filter_h - 1, wp))
    return unpad(img, h, w, pad)


def unpad(img: Any, h: int, w: int, pad: int) -> Any:
    """The (H, W) image inside a padded one that may stop short of the far padding.

    ``img`` (N, C, rows, cols) covers the padded image from its top-left corner up to the
    last patch; positions past it are zeros.
    """
    xp = namespace_of(img)
    n, c, rows, width = (int(v) for v in img.shape)
    dev = device_of(img)
    if rows < h + pad:
        img = xp.concat([img, xp.zeros((n, c, h + pad - rows, width), dtype=img.dtype,
                                       device=dev)], axis=2)  # fmt: skip
    if width < w + pad:
        extra = xp.zeros((n, c, int(img.shape[2]), w + pad - width), dtype=img.dtype, device=dev)
        img = xp.concat([img, extra], axis=3)
    return img[:, :, pad : pad + h, pad : pad + w]


def _spread(a: Any, stride: int, axis: int, xp: Any) -> Any:
    """``stride - 1`` zeros after each entry along ``axis`` (2 or 3 of a 4-D array)."""
    shape = tuple(int(v) for v in a.shape)
    e = xp.expand_dims(a, axis=axis + 1)
    gap = list(e.shape)
    gap[axis + 1] = stride - 1
    e = xp.concat([e, xp.zeros(tuple(gap), dtype=a.dtype, device=device_of(a))], axis=axis + 1)
    new = list(shape)
    new[axis] = shape[axis] * stride
    return xp.reshape(e, tuple(new))


def _shifted_sum(a: Any, unit: int, xp: Any) -> Any:
    """``sum_r shift(a[:, r, :], r*unit)`` for ``a`` (B, k, L): (B, L + (k-1)*unit)."""
    b, k, length = (int(v) for v in a.shape)
    pad = xp.zeros((b, k, k * unit), dtype=a.dtype, device=device_of(a))
    flat = xp.reshape(xp.concat([a, pad], axis=2), (b, k * (length + k * unit)))
    row = length + (k - 1) * unit
    return xp.sum(xp.reshape(flat[:, : k * row], (b, k, row)), axis=1)


def im2col(input_data: Any, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> Any:
    """The book's ``im2col``: patches of ``(N, C, H, W)`` as rows.

    Returns
    -------
    array (N*out_h*out_w, C*filter_h*filter_w), the input's dtype and device
        Row ``(n*out_h + i)*out_w + j`` is the patch under output position ``(i, j)`` of
        image ``n``, flattened in ``(C, filter_h, filter_w)`` order.
    """
    xp = namespace_of(input_data)
    n = int(input_data.shape[0])
    cols = windows(input_data, filter_h, filter_w, stride, pad)
    k, p = int(cols.shape[1]), int(cols.shape[2])
    return xp.reshape(xp.permute_dims(cols, (0, 2, 1)), (n * p, k))


def col2im(
    col: Any, input_shape: ImageShape, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0
) -> Any:
    """The book's ``col2im``: rows of :func:`im2col`'s layout summed back into images
    (:func:`overlap_add` of the layers' layout).

    Parameters
    ----------
    col : array (N*out_h*out_w, C*filter_h*filter_w)
    input_shape : (N, C, H, W)

    Returns
    -------
    array (N, C, H, W), ``col``'s dtype and device
    """
    xp = namespace_of(col)
    n, c, h, w = (int(v) for v in input_shape)
    oh, ow = _check_columns(col, input_shape, filter_h, filter_w, stride, pad, book=True)
    cols = xp.permute_dims(xp.reshape(col, (n, oh * ow, c * filter_h * filter_w)), (0, 2, 1))
    return overlap_add(cols, (n, c, h, w), filter_h, filter_w, stride, pad)


def _check_columns(
    col: Any, input_shape: ImageShape, fh: int, fw: int, stride: int, pad: int, *, book: bool
) -> tuple[int, int]:
    """The output grid ``(out_h, out_w)`` of the patches ``col`` holds, after checking its
    shape: :func:`im2col`'s layout (``book``) or :func:`windows`'."""
    n, c, h, w = (int(v) for v in input_shape)
    oh = out_size(h, fh, stride, pad, "height")
    ow = out_size(w, fw, stride, pad, "width")
    k = c * fh * fw
    expected = (n * oh * ow, k) if book else (n, k, oh * ow)
    if tuple(int(v) for v in col.shape) != expected:
        raise ValueError(
            f"col has shape {tuple(col.shape)}, expected {expected} for input_shape "
            f"{tuple(input_shape)}, a {fh}x{fw} filter, stride {stride}, pad {pad}"
        )
    return oh, ow
