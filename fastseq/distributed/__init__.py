"""fastseq beyond one machine, on Ray (``pip install fastseq[ray]``).

- :func:`fit` / :class:`DataParallel`: synchronous data-parallel training on Ray actors,
  deterministic (gradients averaged in a fixed order), callbacks on the driver, recovery
  from the last ModelCheckpoint when a worker is lost;
- :func:`predict`: corpus-scale predict, the model shipped once per worker, a tokenizer
  riding along for raw text, output in the input's order;
- :class:`TuneReportCallback`: each epoch's metrics to Ray Tune (sweeps; recipe in
  :mod:`fastseq.distributed.tune`).

This package imports without Ray; calling into Ray without it raises ImportError naming
the extra to install.
"""
from fastseq.distributed._gradients import (
    PackedGradients,
    average_gradients,
    pack_gradients,
    unpack_gradients,
)
from fastseq.distributed.corpus import TextEncoder, predict
from fastseq.distributed.data_parallel import DataParallel, WorkerLostError, fit
from fastseq.distributed.tune import TuneReportCallback

__all__ = ["DataParallel", "PackedGradients", "TextEncoder", "TuneReportCallback",
           "WorkerLostError", "average_gradients", "fit", "pack_gradients", "predict",
           "unpack_gradients"]
