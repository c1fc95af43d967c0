"""What background prefetch gains on a generator that tokenizes raw text on the fly (issue 19).

A generator reads the raw IMDB training reviews, and per batch runs
``Tokenizer.texts_to_sequences`` + ``pad_sequences`` (the work a corpus too large for memory
needs each epoch); ``model.fit(generator, steps_per_epoch=...)`` trains a small LSTM on it with
``workers=0`` (batches made in the caller, between train steps) and ``workers=1`` (made by a
background thread while the current batch trains), in alternating runs after an uncounted
warm-in. Also reports the generator alone and the training alone on pre-made batches, which
bound what overlap can give: max(generator, training) <= prefetched <= generator + training.

``--io-ms`` adds that many milliseconds of waiting per batch before tokenizing (a sleep, which
releases the GIL as a read from disk or network does), for data that is not in the page cache.

    python bench/prefetch_text_generator.py [--steps 60] [--runs 3] [--batch-size 64] [--io-ms 0]
"""
import argparse
import itertools
import os
import time

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--maxlen", type=int, default=200)
    p.add_argument("--io-ms", type=float, default=0.0)
    p.add_argument("--data", default=os.environ.get("FASTSEQ_DATA"))
    args = p.parse_args()

    from fastseq.datasets import imdb
    from fastseq.layers import LSTM, Dense, Embedding
    from fastseq.models import Sequential
    from fastseq.preprocessing.sequence import pad_sequences
    from fastseq.preprocessing.text import Tokenizer
    from fastseq.utils import set_random_seed

    (texts, labels), _ = imdb.load_reviews(path=args.data)
    tokenizer = Tokenizer(num_words=10000)
    tokenizer.fit_on_texts(texts[::5])
    labels = labels.astype("float32")
    bs = args.batch_size

    def batches():
        for start in itertools.cycle(range(0, len(texts) - bs, bs)):
            if args.io_ms:
                time.sleep(args.io_ms / 1000)
            seqs = tokenizer.texts_to_sequences(texts[start:start + bs])
            yield pad_sequences(seqs, maxlen=args.maxlen), labels[start:start + bs]

    def model():
        set_random_seed(0)
        m = Sequential([Embedding(10000, 32), LSTM(32), Dense(1, activation="sigmoid")])
        m.compile("adam", "binary_crossentropy")
        return m

    def fit(workers):
        m = model()
        start = time.perf_counter()
        m.fit(batches(), steps_per_epoch=args.steps, epochs=1, verbose=0, workers=workers)
        return time.perf_counter() - start

    def generator_alone():
        start = time.perf_counter()
        for _ in itertools.islice(batches(), args.steps):
            pass
        return time.perf_counter() - start

    made = list(itertools.islice(batches(), args.steps))

    def training_alone():
        m = model()
        start = time.perf_counter()
        m.fit(iter(made), steps_per_epoch=args.steps, epochs=1, verbose=0, workers=0)
        return time.perf_counter() - start

    fit(0), fit(1)  # warm-in (compilation, caches), not counted
    times = {"in the caller (workers=0)": [], "prefetched (workers=1)": [],
             "generator alone": [], "training alone": []}
    for _ in range(args.runs):
        times["in the caller (workers=0)"].append(fit(0))
        times["prefetched (workers=1)"].append(fit(1))
        times["generator alone"].append(generator_alone())
        times["training alone"].append(training_alone())
    print(f"{args.steps} steps of batch {bs}, maxlen {args.maxlen}, {args.runs} alternating "
          f"runs, {args.io_ms} ms of I/O wait per batch, {os.cpu_count()} cores")
    for name, ts in times.items():
        print(f"  {name:28s} {min(ts):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ts)})")
    caller = times["in the caller (workers=0)"]
    ahead = times["prefetched (workers=1)"]
    print(f"  speed-up of prefetch: {min(caller) / min(ahead):.2f}x (best of each), "
          f"{np.median(caller) / np.median(ahead):.2f}x (medians)")


if __name__ == "__main__":
    main()
