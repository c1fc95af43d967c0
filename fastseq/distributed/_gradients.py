"""Gradients as they travel between data-parallel workers: every dense gradient in one flat
buffer, every row-sparse (Embedding) gradient as its (rows, values), and the weighted average
of the workers' gradients in a fixed order (worker 0, 1, ...), so a run is deterministic.
Plain NumPy: no Ray here."""
from typing import NamedTuple

import numpy as np

from fastseq.variables import SparseGrad

_DENSE, _SPARSE, _NONE = "dense", "sparse", "none"


class PackedGradients(NamedTuple):
    """One worker's gradients of the trainable weights, in ``model.trainable_weights``
    order. flat: the dense gradients raveled end to end (None when there are none);
    sparse: {weight position: (rows, values)}; layout: per weight, ("dense", offset,
    shape), ("sparse",) or ("none",)."""

    flat: object
    sparse: dict
    layout: tuple

    @property
    def nbytes(self):
        """Bytes of gradient data (what a worker ships per step)."""
        total = 0 if self.flat is None else self.flat.nbytes
        return total + sum(r.nbytes + v.nbytes for r, v in self.sparse.values())


def pack_gradients(variables, ops):
    """The ``.grad`` of each Variable (dense arrays, :class:`SparseGrad` or None, on the
    backend ``ops``) as one :class:`PackedGradients` on the host."""
    layout, dense, sparse, offset = [], [], {}, 0
    for pos, var in enumerate(variables):
        grad = var.grad
        if grad is None:
            layout.append((_NONE,))
        elif isinstance(grad, SparseGrad):
            sparse[pos] = (np.asarray(grad.rows, dtype=np.int64), ops.to_numpy(grad.values))
            layout.append((_SPARSE,))
        else:
            host = np.asarray(ops.to_numpy(grad))
            layout.append((_DENSE, offset, host.shape))
            dense.append(host.ravel())
            offset += host.size
    flat = np.concatenate(dense) if dense else None
    return PackedGradients(flat, sparse, tuple(layout))


def unpack_gradients(packed, variables, ops):
    """Set each Variable's ``.grad`` from ``packed`` (views into its flat buffer, on the
    backend ``ops``)."""
    if len(packed.layout) != len(variables):
        raise ValueError(f"gradients for {len(packed.layout)} weights, the model has "
                         f"{len(variables)} trainable weights")
    for pos, (entry, var) in enumerate(zip(packed.layout, variables)):
        if entry[0] == _NONE:
            var.grad = None
        elif entry[0] == _SPARSE:
            rows, values = packed.sparse[pos]
            var.grad = SparseGrad(rows, ops.asarray(values.astype(var.dtype, copy=False)))
        else:
            _, offset, shape = entry
            size = int(np.prod(shape, dtype=np.int64))
            view = packed.flat[offset:offset + size].reshape(shape)
            var.grad = ops.asarray(view.astype(var.dtype, copy=False))


def _merge_rows(parts):
    """Sum row-sparse (rows, values) gradients in the given order (models._sum_grads: rows
    concatenated in that order, each row's values added in that order by np.add.at)."""
    from fastseq.backend import get_ops
    from fastseq.models import _sum_grads

    ops, merged = get_ops("reference"), None
    for rows, values in parts:
        merged = _sum_grads(ops, merged, SparseGrad(rows, values))
    return np.asarray(merged.rows, dtype=np.int64), np.asarray(merged.values)


def average_gradients(parts, sizes):
    """The weighted mean of the workers' :class:`PackedGradients`, worker by worker in the
    given order. Each worker's loss (and so its gradient) is a mean over its own shard's
    samples, so the mean over the global batch weights each worker by its shard size:
    sum_i (n_i / n) * grad_i. (A loss that is not a mean over samples, e.g. a
    masked sequence loss averaged over the real steps, makes this weighting approximate.)"""
    if not parts or len(parts) != len(sizes):
        raise ValueError(f"average_gradients: {len(parts)} gradient sets for {len(sizes)} "
                         "shard sizes (one each, at least one)")
    layout = parts[0].layout
    for k, part in enumerate(parts[1:], 1):
        if [e[0] for e in part.layout] != [e[0] for e in layout]:
            raise ValueError(f"worker {k}'s gradients have another layout than worker 0's "
                             "(a replica with other weights or another model?)")
    total = float(sum(sizes))
    if total <= 0:
        raise ValueError("average_gradients: the shards hold no samples")
    flat = None
    for part, n in zip(parts, sizes):
        if part.flat is None:
            continue
        term = part.flat * part.flat.dtype.type(n / total)
        if flat is None:
            flat = term
        else:
            flat += term
    sparse = {}
    for pos in parts[0].sparse:
        scaled = [(part.sparse[pos][0], part.sparse[pos][1] * part.sparse[pos][1].dtype.type(
            n / total)) for part, n in zip(parts, sizes)]
        sparse[pos] = scaled[0] if len(scaled) == 1 else _merge_rows(scaled)
    return PackedGradients(flat, sparse, layout)
