"""ivr: an offline, self-hosted IVR self-service voice navigation engine."""

import os

# The media plane's batched numpy work (in-band DTMF) is small matrix products: OpenBLAS's thread
# pool would spin on the other core for nothing (measured: 3x the CPU at 300 calls). One engine
# process per core is the scaling model, so one BLAS thread each. Must run before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
