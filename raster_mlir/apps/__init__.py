"""Applications built on the library: the `raster-opt` and `raster-mlir` commands, the demos, datasets.

Nothing in the library imports from here (tests/test_import_layout.py checks it): an
application may use any public module, the compiler never depends on an application.

    raster_opt.py            `raster-opt`: passes over an .mlir file, like mlir-opt / xdsl-opt
    raster_mlir_command.py   `raster-mlir` / `python -m raster_mlir`: train, demo, cache
    train_command.py         `raster-mlir train`: the 784->128->10 MLP on MNIST digits
    demo.py                  `raster-mlir demo`: the seed's 4->8->3 MLP
    datasets.py              the small real datasets `raster-mlir train` reads (the `demo` extra)
"""
