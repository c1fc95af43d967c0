"""Hyperparameter sweeps with Ray Tune: a callback that reports each epoch's logs.

Recipe (README "Distributed (Ray)"; tests/test_distributed.py runs a small one)::

    from ray import tune
    from fastseq.distributed import TuneReportCallback

    def train(config, x, y, x_val, y_val):
        fastseq.set_num_threads(1)              # one core per trial
        model = build(units=config["units"], learning_rate=config["lr"])
        model.fit(x, y, epochs=3, validation_data=(x_val, y_val), verbose=0,
                  callbacks=[TuneReportCallback()])

    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(train, x=x, y=y, x_val=xv, y_val=yv),
                            {"cpu": 1}),          # the arrays go to the object store once
        param_space={"units": tune.grid_search([32, 64]),
                     "lr": tune.grid_search([1e-3, 3e-3])},
        tune_config=tune.TuneConfig(metric="val_loss", mode="min"))
    best = tuner.fit().get_best_result().config
"""
from fastseq.callbacks import Callback

__all__ = ["TuneReportCallback"]


class TuneReportCallback(Callback):
    """Report each epoch's logs to Ray Tune (``ray.tune.report``), with ``epoch`` (1-based).

    ``metrics``: None (every log), a list of log keys, or a dict {name reported to Tune:
    log key}. A key missing from the logs is an error naming the keys there are."""

    def __init__(self, metrics=None, report=None):
        super().__init__()
        if isinstance(metrics, str):
            metrics = [metrics]
        if metrics is not None and not isinstance(metrics, dict):
            metrics = {key: key for key in metrics}
        self.metrics = metrics
        self._report = report  # a stand-in for ray.tune.report (tests)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.metrics is None:
            values = logs
        else:
            missing = [key for key in self.metrics.values() if key not in logs]
            if missing:
                raise KeyError(f"TuneReportCallback: {missing} not in this epoch's logs "
                               f"{sorted(logs)}")
            values = {name: logs[key] for name, key in self.metrics.items()}
        values = {name: float(value) for name, value in values.items()}
        values["epoch"] = epoch + 1
        report = self._report
        if report is None:
            from fastseq.distributed._ray import require_tune

            report = require_tune().report
        report(values)
