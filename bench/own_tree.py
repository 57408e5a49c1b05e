"""A benchmark child's check that it measures one checkout, not a hybrid of two.

A child runs in a checkout's tree with that tree first on sys.path, but an editable install of
another checkout in the child's virtual environment still maps `raster_mlir.passes` and
`raster_mlir.dialects` (package-dir entries of pyproject.toml) to the other tree: the child would
time one checkout's raster_mlir with the other's passes and dialects. `OWN_TREE_CHECK`, pasted into
a child's code after its `sys.path.insert(0, os.getcwd())` (it needs `os` and `sys`), stops the
child with a message when raster_mlir, its passes or its dialects are not under its working
directory. It finds them without importing the passes or dialects (their import is a timed phase).
"""

OWN_TREE_CHECK = r"""
import importlib.util as _util
_tree = os.path.realpath(os.getcwd()) + os.sep
_foreign = [
    f"{_name} from {_spec.origin}"
    for _name in ("raster_mlir", "raster_mlir.passes", "raster_mlir.dialects")
    for _spec in [_util.find_spec(_name)]
    if not os.path.realpath(_spec.origin).startswith(_tree)
]
if _foreign:
    sys.exit(f"not one checkout: {', '.join(_foreign)}, not under {_tree}; run with a Python whose raster_mlir is that tree")
"""
