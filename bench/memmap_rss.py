"""Peak resident memory of fit on a memory-mapped IMDB-shaped array (issue 19).

Writes a 2 GiB int32 array of token ids, shape (1,073,741, 500), with np.lib.format.open_memmap
(once; reused if present), then, in a fresh process each (Linux keeps the peak RSS across
fork + exec, so nothing runs in the parent): fit the seed-002 LSTM (Embedding(5000,
32) -> LSTM(100) -> Dense, batch 64, shuffled) for --steps batches on
(a) np.load(path, mmap_mode="r"), (b) np.load(path) (the whole array in memory), and reports
each process's peak RSS (ru_maxrss).

    python bench/memmap_rss.py [--path /tmp/imdb_like_2g.npy] [--steps 20]
"""
import argparse
import os
import resource
import subprocess
import sys

ROWS, LENGTH = (2 << 30) // (500 * 4), 500


def make(path):
    import numpy as np

    if os.path.exists(path) and os.path.getsize(path) >= ROWS * LENGTH * 4:
        return
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.int32, shape=(ROWS, LENGTH))
    rng = np.random.default_rng(0)
    for start in range(0, ROWS, 65536):
        stop = min(start + 65536, ROWS)
        out[start:stop] = rng.integers(1, 5000, (stop - start, LENGTH), dtype=np.int32)
    out.flush()


def run(path, mode, steps):
    import numpy as np

    from fastseq.layers import LSTM, Dense, Embedding
    from fastseq.models import Sequential

    x = np.load(path, mmap_mode="r") if mode == "memmap" else np.load(path)
    y = (np.arange(len(x)) % 2).astype(np.float32)
    model = Sequential([Embedding(5000, 32, input_length=LENGTH), LSTM(100),
                        Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, batch_size=64, steps_per_epoch=steps, epochs=1, verbose=0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{mode:8s} x: {x.nbytes / 2**30:.2f} GiB, peak RSS {peak:,.0f} MiB")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--path", default="/tmp/imdb_like_2g.npy")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--mode", choices=["make", "memmap", "memory"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode == "make":
        make(args.path)
        return
    if args.mode:
        run(args.path, args.mode, args.steps)
        return
    # each part in its own process, this one touching no data: Linux keeps a process's
    # peak RSS across fork + exec, so a parent that wrote the file would inflate it
    for mode in ("make", "memmap", "memory"):
        subprocess.run([sys.executable, __file__, "--path", args.path, "--steps",
                        str(args.steps), "--mode", mode], check=True)


if __name__ == "__main__":
    main()
