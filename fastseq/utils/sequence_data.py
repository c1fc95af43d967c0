"""``Sequence`` (alias ``PyDataset``): a dataset of batches addressed by index, as
``keras.utils.PyDataset`` / ``keras.utils.Sequence``.

    class Batches(Sequence):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)          # workers, use_multiprocessing, max_queue_size
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):                      # the number of batches
            return math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, index):           # one whole batch: x, (x, y) or (x, y, w)
            s = slice(index * self.batch_size, (index + 1) * self.batch_size)
            return self.x[s], self.y[s]

``workers``, ``use_multiprocessing`` and ``max_queue_size`` tell ``fit`` how to prepare the
batches in the background; iterating over the Sequence by hand runs in the caller.
"""
import warnings

__all__ = ["Sequence", "PyDataset"]

_DEFAULTS = {"_workers": 1, "_use_multiprocessing": False, "_max_queue_size": 10}


class Sequence:
    """Base class of a dataset of whole batches: implement ``__len__`` (the number of
    batches) and ``__getitem__(index)`` (the batch at ``index``); optionally
    ``on_epoch_begin`` / ``on_epoch_end`` (called by ``fit`` around every epoch)."""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _setting(self, name):
        # A subclass that forgot super().__init__() still works, with Keras's warning.
        if not hasattr(self, name):
            warnings.warn(
                "Your `PyDataset` class should call `super().__init__(**kwargs)` in its "
                "constructor. `**kwargs` can include `workers`, `use_multiprocessing`, "
                "`max_queue_size`.", stacklevel=3)
            for key, value in _DEFAULTS.items():
                if not hasattr(self, key):
                    setattr(self, key, value)
        return getattr(self, name)

    @property
    def workers(self):
        return self._setting("_workers")

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        return self._setting("_use_multiprocessing")

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        return self._setting("_max_queue_size")

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ (the number "
                                  "of batches)")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) "
                                  "(the batch at that index)")

    @property
    def num_batches(self):
        """The number of batches (Keras 3's name for ``len``)."""
        return len(self)

    def on_epoch_begin(self):
        """Called at the beginning of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch (e.g. to reshuffle the samples)."""

    def __iter__(self):
        """The batches in order (no background workers), as Keras 2's Sequence."""
        for index in range(len(self)):
            yield self[index]


PyDataset = Sequence
