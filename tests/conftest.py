"""Test-wide settings: one compute thread per process.

The networks in the tests are small; on a shared 2-core machine several OpenMP threads per process slow them down
many times over (and the DDP tests run two processes at once).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
