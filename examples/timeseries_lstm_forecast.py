"""An LSTM forecaster of the yearly sunspot numbers (1700-2008), trained from
``timeseries_dataset_from_array``: the last ``--window`` years predict the next one.

    pip install "fastseq[timeseries]"        # statsmodels, which ships the series
    python examples/timeseries_lstm_forecast.py [--epochs 60] [--window 12]

LSTM(32, input_shape=(window, 1)) -> Dense(1), loss mse, on the years before 1950 (scaled by
their mean and standard deviation); validated and tested on 1950-2008 against the naive
forecast "next year = this year". The series: statsmodels.datasets.sunspots (Wolf's yearly
sunspot numbers, SIDC).
"""
import argparse
import sys
import time

import numpy as np

from fastseq.layers import LSTM, Dense
from fastseq.models import Sequential
from fastseq.utils import set_random_seed, timeseries_dataset_from_array


def load_sunspots():
    try:
        from statsmodels.datasets import sunspots
    except ImportError:
        sys.exit("this example needs statsmodels, which ships the sunspot series: "
                 "pip install 'fastseq[timeseries]' (or pip install statsmodels)")
    frame = sunspots.load_pandas().data
    return frame["YEAR"].to_numpy().astype(int), frame["SUNACTIVITY"].to_numpy("float32")


def windows(series, window, first_target, last_target, **kwargs):
    """(window of years, the year after) pairs for the targets first_target..last_target
    (indices into series): window i covers series[i:i + window], its target series[i + window].
    The windows lie in series[start_index:end_index] (end exclusive, as Keras)."""
    return timeseries_dataset_from_array(series, series[window:], window,
                                         start_index=first_target - window,
                                         end_index=last_target, **kwargs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--window", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--split-year", type=int, default=1950)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, default=0)
    args = p.parse_args(argv)
    set_random_seed(args.seed)

    years, spots = load_sunspots()
    split = int(np.searchsorted(years, args.split_year))  # first test year's index
    mean, std = spots[:split].mean(), spots[:split].std()
    series = ((spots - mean) / std)[:, None]  # (time, 1 feature)
    w = args.window
    # train on the targets before the split year, validate (and test) on the years after
    train = windows(series, w, w, split - 1, batch_size=args.batch_size, shuffle=True,
                    seed=args.seed)
    val = windows(series, w, split, len(series) - 1, batch_size=64)
    print(f"{len(years)} years ({years[0]}-{years[-1]}); "
          f"{sum(len(train[i][0]) for i in range(len(train)))} training windows of {w} years, "
          f"{sum(len(val[i][0]) for i in range(len(val)))} test windows ({years[split]}-"
          f"{years[-1]})")

    model = Sequential()
    model.add(LSTM(32, input_shape=(w, 1)))
    model.add(Dense(1))
    model.compile(optimizer="adam", loss="mse")
    start = time.perf_counter()
    history = model.fit(train, epochs=args.epochs, validation_data=val, verbose=args.verbose)
    print(f"Trained {args.epochs} epochs in {time.perf_counter() - start:.1f} s; "
          f"val_loss {history.history['val_loss'][-1]:.4f}")

    x_val = np.concatenate([val[i][0] for i in range(len(val))])
    y_val = np.concatenate([val[i][1] for i in range(len(val))])[:, 0] * std + mean
    forecast = model.predict(x_val, verbose=0)[:, 0] * std + mean
    naive = x_val[:, -1, 0] * std + mean  # next year = this year
    for name, guess in (("LSTM", forecast), ("naive last value", naive)):
        err = guess - y_val
        print(f"{name:17s} MAE {np.abs(err).mean():6.2f}  RMSE {np.sqrt((err ** 2).mean()):6.2f}"
              " (sunspot number)")
    ratio = np.abs(forecast - y_val).mean() / np.abs(naive - y_val).mean()
    print(f"LSTM MAE / naive MAE: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
