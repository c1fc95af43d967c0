"""Peak resident memory of the IMDB seed's fit: fastseq against its PyTorch twin (issue 16).

The seed-002 model (Embedding(5000, 32) -> LSTM(100) -> Dense(1, sigmoid), binary
cross-entropy, Adam, batch 64) on the IMDB training set's shape, 25,000 reviews of 500
token ids (random ids here: memory does not depend on the values; 50 MB of int32), fit for
``--steps`` batches. Each side runs in a fresh process (Linux keeps the peak RSS across
fork + exec, so the parent runs nothing) and reports three figures from ru_maxrss and
/proc/self/statm:

* ``imports``: resident memory after importing the framework and building the model,
* ``data``: after making the arrays (and, for PyTorch, the tensors on them, no copy),
* ``peak``: the process's peak resident memory over the whole run;

``peak - data`` is what training itself adds (activations kept for the backward, gradients,
optimizer moments, scratch). Both sides use two threads.

    python bench/memory_fit.py [--steps 30] [--rounds 1]
"""
import argparse
import json
import resource
import subprocess
import sys

VOCAB, DIM, UNITS, BATCH, LENGTH, REVIEWS = 5000, 32, 100, 64, 500, 25000


def _rss_mib():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _data():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(1, VOCAB, (REVIEWS, LENGTH), dtype=np.int32)
    y = rng.integers(0, 2, REVIEWS).astype(np.float32)
    return x, y


def run_fastseq(steps):
    import fastseq
    from fastseq.layers import LSTM, Dense, Embedding
    from fastseq.models import Sequential

    fastseq.set_num_threads(2)
    model = Sequential([Embedding(VOCAB, DIM, input_length=LENGTH), LSTM(UNITS),
                        Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.build((None, LENGTH))
    imports = _rss_mib()
    x, y = _data()
    data = _rss_mib()
    model.fit(x, y, batch_size=BATCH, epochs=1, steps_per_epoch=steps, verbose=0)
    return {"imports": imports, "data": data, "peak": _peak_mib()}


def run_torch(steps):
    import numpy as np
    import torch

    torch.set_num_threads(2)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(VOCAB, DIM)
            self.lstm = torch.nn.LSTM(DIM, UNITS, batch_first=True)
            self.out = torch.nn.Linear(UNITS, 1)

        def forward(self, x):
            _, (h, _) = self.lstm(self.emb(x))
            return self.out(h[0])[:, 0]

    model = Model().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    imports = _rss_mib()
    x, y = _data()
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)  # no copies
    data = _rss_mib()
    order = np.random.default_rng(1).permutation(REVIEWS)
    for step in range(steps):
        rows = torch.from_numpy(order[step * BATCH:(step + 1) * BATCH])
        # nn.Embedding takes int64 ids: each batch's are converted, as a DataLoader would
        xb = x_t[rows].long()
        opt.zero_grad()
        loss = loss_fn(model(xb), y_t[rows])
        loss.backward()
        opt.step()
    return {"imports": imports, "data": data, "peak": _peak_mib()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--side", choices=["fastseq", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run = run_fastseq if args.side == "fastseq" else run_torch
        print(json.dumps(run(args.steps)))
        return
    print(f"IMDB seed fit, {REVIEWS} x {LENGTH} ids, batch {BATCH}, {args.steps} steps; MiB")
    print("| side    | imports | data | peak | peak - data |")
    print("|---------|---------|------|------|-------------|")
    for _ in range(args.rounds):
        for side in ("fastseq", "torch"):
            out = subprocess.run([sys.executable, __file__, "--side", side,
                                  "--steps", str(args.steps)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {side:7} | {r['imports']:7.0f} | {r['data']:4.0f} | {r['peak']:4.0f} "
                  f"| {r['peak'] - r['data']:11.0f} |")


if __name__ == "__main__":
    main()
