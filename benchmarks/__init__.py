"""Benchmarks of xpnet against the chapter's NumPy code, plain PyTorch and the FLOP floor.

One module per job:

- :mod:`benchmarks.chapter`: the chapter's own functions, ``TwoLayerNet``,
  ``numerical_gradient`` and training loop, and the next chapter's layers,
  ``MultiLayerNet``, optimizers and optimizer-comparison loop, as the book writes them
  (pure NumPy; also the test suite's independent oracle);
- :mod:`benchmarks.torch_eager`: the recipe in plain PyTorch eager with hand-written backprop;
- :mod:`benchmarks.timing`: timing windows, the FLOP model and the matmul floor;
- :mod:`benchmarks.machine`: the machine description (CPU, cores, library versions, BLAS);
- :mod:`benchmarks.load`: a competing CPU-bound process for the "under load" row;
- :mod:`benchmarks.sections`: the sections of a run, each a list of rows;
- :mod:`benchmarks.optim`: optimizer cost on the recipe, the book's optimizer comparison;
- :mod:`benchmarks.stacked`: stacked sweeps against sequential runs;
- :mod:`benchmarks.report`: ratios within a run and the printed tables.

``scripts/bench.py`` is the command line. This module holds only the chapter's recipe, so
``benchmarks.chapter`` imports nothing but NumPy.
"""

# The chapter's recipe (train_neuralnet.py): 784-50-10 sigmoid, batch 100, lr 0.1.
INPUT, HIDDEN, OUTPUT = 784, 50, 10
BATCH, LR = 100, 0.1
# Untimed steps before every timed training row (kernel compilation, allocator, threads).
WARMUP_STEPS = 20
