"""Epoch time of the seed-002 LSTM on real IMDB reviews: every review padded to 500 vs
``bucket_by_length`` (batches of similar length, each padded to its own longest) (issue 19).

Embedding(5000, 32, mask_zero=True) -> LSTM(100) -> Dense(1, sigmoid), batch 64, one epoch of
``fit`` on ``--limit`` training reviews cut to 500 tokens, shuffled each epoch, in alternating
runs after an uncounted warm-in. Then checks that the two give every test review the same
prediction with the same weights (mask_zero: the padding does not change a sample's result).

    python bench/bucketing_imdb.py [--limit 2500] [--runs 2]
"""
import argparse
import os
import time

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=2500)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--maxlen", type=int, default=500)
    p.add_argument("--data", default=os.environ.get("FASTSEQ_DATA"))
    args = p.parse_args()

    from fastseq.datasets import imdb
    from fastseq.layers import LSTM, Dense, Embedding
    from fastseq.models import Sequential
    from fastseq.preprocessing.sequence import pad_sequences
    from fastseq.utils import bucket_by_length, set_random_seed

    (x_train, y_train), (x_test, _) = imdb.load_data(path=args.data, num_words=5000,
                                                      limit=args.limit)
    lengths = np.array([len(s) for s in x_train])
    padded = pad_sequences(x_train, maxlen=args.maxlen)
    batches = bucket_by_length(list(x_train), y_train, batch_size=64, maxlen=args.maxlen)
    tokens = np.minimum(lengths, args.maxlen)
    bucket_cells = sum(len(batches[i][0]) * batches[i][0].shape[1] for i in range(len(batches)))
    print(f"{len(x_train)} reviews, {tokens.mean():.0f} tokens on average (cut at "
          f"{args.maxlen}); padded cells: {padded.size:,} padded to {args.maxlen}, "
          f"{bucket_cells:,} bucketed")

    def model():
        set_random_seed(0)
        m = Sequential([Embedding(5000, 32, mask_zero=True), LSTM(100),
                        Dense(1, activation="sigmoid")])
        m.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        return m

    def epoch(bucketed):
        m = model()
        start = time.perf_counter()
        if bucketed:
            m.fit(batches, epochs=1, shuffle=True, verbose=0)
        else:
            m.fit(padded, y_train, batch_size=64, epochs=1, shuffle=True, verbose=0)
        return time.perf_counter() - start, m

    epoch(False), epoch(True)  # warm-in
    times = {False: [], True: []}
    for _ in range(args.runs):
        for bucketed in (False, True):
            times[bucketed].append(epoch(bucketed)[0])
    for bucketed, name in ((False, f"padded to {args.maxlen}"), (True, "bucket_by_length")):
        ts = times[bucketed]
        print(f"  {name:18s} {min(ts):6.2f} s per epoch  (runs: "
              f"{', '.join(f'{t:.2f}' for t in ts)})")
    print(f"  speed-up: {min(times[False]) / min(times[True]):.2f}x (best of each)")

    _, m = epoch(True)
    tests = list(x_test[:512])
    ref = m.predict(pad_sequences(tests, maxlen=args.maxlen), verbose=0)
    test_batches = bucket_by_length(tests, batch_size=64, maxlen=args.maxlen)
    got = test_batches.restore_order(np.concatenate(
        [m.predict(test_batches[i][0], verbose=0) for i in range(len(test_batches))]))
    print(f"  predictions, bucketed vs padded to {args.maxlen}: max |difference| "
          f"{np.abs(got - ref).max():.2e} over {len(tests)} test reviews")


if __name__ == "__main__":
    main()
