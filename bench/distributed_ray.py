"""Issue 18's figures: data-parallel fit on Ray on this machine, the scaling model on paper,
and corpus predict.

    python bench/distributed_ray.py --samples 1024 --docs 4096

1. The IMDB LSTM seed (Embedding(5000, 32) -> LSTM(100) -> Dense sigmoid, adam, batch 64,
   reviews padded to 500) for a reduced epoch of ``--samples`` real IMDB reviews: one
   process with 2 threads, then DataParallel with 1 worker x 2 threads and 2 workers x 1
   thread (each after an uncounted warm-in fit, which starts the workers), with the
   per-step split: worker compute, communication (step minus the slowest worker's
   compute minus the driver's reduce + update), reduce + update.
2. Gradient bytes per step of the seed models (IMDB LSTM, the Conv1D seed), measured on a
   real batch, and the scaling model: allreduce time at 1 / 10 / 25 Gbit/s, predicted
   throughput at 1 / 4 / 16 / 64 workers, the per-worker batch at which communication is
   under 10% of the step.
3. Corpus predict: documents per second, 2 workers (raw text, the Tokenizer riding along)
   against model.predict in one process (tokenizing included).
4. The reduction path: one allreduce of the LSTM's dense gradient between 2 actors through
   the driver (object store) against Ray's collective gloo allreduce (needs torch).
"""
import argparse
import statistics
import time

import numpy as np

import fastseq
from fastseq.datasets import imdb
from fastseq.distributed import DataParallel, pack_gradients
from fastseq.distributed import predict as corpus_predict
from fastseq.layers import (
    LSTM,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    GlobalAveragePooling1D,
    MaxPooling1D,
)
from fastseq.models import Sequential
from fastseq.preprocessing.sequence import pad_sequences
from fastseq.preprocessing.text import Tokenizer
from fastseq.utils import set_random_seed

NUM_WORDS, MAXLEN, BATCH = 5000, 500, 64
LINKS_GBIT = (1, 10, 25)
WORKERS = (1, 4, 16, 64)
LATENCY_S = 50e-6  # one message between machines over TCP (order of magnitude)


def imdb_lstm():
    set_random_seed(0)
    model = Sequential([Embedding(NUM_WORDS, 32, input_length=MAXLEN), LSTM(100),
                        Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.build((None, MAXLEN))
    return model


def imdb_conv1d(seq_length=64):
    set_random_seed(0)
    model = Sequential([Embedding(NUM_WORDS, 100, input_length=seq_length),
                        Conv1D(64, 3, activation="relu"), Conv1D(64, 3, activation="relu"),
                        MaxPooling1D(3), Conv1D(128, 3, activation="relu"),
                        Conv1D(128, 3, activation="relu"), GlobalAveragePooling1D(),
                        Dropout(0.5), Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    model.build((None, seq_length))
    return model


def load(samples):
    (x, y), _ = imdb.load_data(num_words=NUM_WORDS)
    x = pad_sequences(x[:samples], maxlen=MAXLEN)
    return x, np.asarray(y[:samples], dtype=np.float32).reshape(-1, 1)


def gradient_bytes(model, x, y):
    """(dense bytes, sparse bytes, dense-embedding bytes) of one step's gradients."""
    xs, ys, sws = model._prepare_xy(x, y, None)
    model._gradient_step(xs, ys, sws)
    packed = pack_gradients(model.trainable_weights, model.ops)
    sparse = sum(r.nbytes + v.nbytes for r, v in packed.sparse.values())
    dense_embedding = sum(model.trainable_weights[p].value.nbytes for p in packed.sparse)
    return packed.flat.nbytes, sparse, dense_embedding


def timed_fit(fit, x, y):
    start = time.perf_counter()
    fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - start


def median(values):
    return statistics.median(values) if values else float("nan")


def measure_epochs(x, y, rounds):
    steps = -(-len(x) // BATCH)
    print(f"\n## IMDB LSTM, reduced epoch of {len(x)} reviews (batch {BATCH}, {steps} steps), "
          f"{rounds} alternating rounds, min - max (median)")
    fastseq.set_num_threads(2)
    single = imdb_lstm()
    single.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, verbose=0)  # warm-in
    pools = {}
    for workers, threads in ((1, 2), (2, 1)):
        parallel = DataParallel(imdb_lstm(), num_workers=workers, threads_per_worker=threads,
                                step_timeout=600)
        parallel.fit(x[:2 * BATCH], y[:2 * BATCH], batch_size=BATCH, epochs=1,
                     verbose=0)  # warm-in: starts the workers
        pools[f"{workers} worker(s) x {threads} thread(s)"] = parallel
    names = ["one process x 2 threads"] + list(pools)
    seconds, timings = {name: [] for name in names}, {name: [] for name in pools}
    for _ in range(rounds):
        fastseq.set_num_threads(2)
        seconds[names[0]].append(timed_fit(single.fit, x, y))
        fastseq.set_num_threads(1)  # the driver only reduces and updates
        for name, parallel in pools.items():
            parallel.step_timings.clear()
            seconds[name].append(timed_fit(parallel.fit, x, y))
            timings[name].extend(parallel.step_timings)
    for parallel in pools.values():
        parallel.shutdown()
    print("| run | epoch (s) | step (ms) | worker compute (ms) | communication (ms) | "
          "reduce + update on the driver (ms) | gradient bytes sent per step |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        spread = (f"{min(seconds[name]):.2f} - {max(seconds[name]):.2f} "
                  f"({median(seconds[name]):.2f})")
        if name not in timings:
            print(f"| {name} | {spread} | {1e3 * median(seconds[name]) / steps:.0f} | | | | |")
            continue
        t = timings[name]
        print(f"| {name} | {spread} | {1e3 * median([r['step_s'] for r in t]):.0f} "
              f"| {1e3 * median([r['compute_s'] for r in t]):.0f} "
              f"| {1e3 * median([r['comm_s'] for r in t]):.1f} "
              f"| {1e3 * median([r['reduce_s'] for r in t]):.1f} "
              f"| {int(median([r['grad_bytes'] for r in t])):,} |")
    two = timings[names[-1]]
    return {"compute_s": median([r["compute_s"] for r in two])}


def wire_bytes(dense, sparse, as_dense, workers):
    """Bytes each worker sends per step in a ring allreduce of the dense gradients, the
    embedding's either all-gathered as rows (sparse) or all-reduced as a dense V x D array,
    whichever is less; and which one."""
    if workers == 1:
        return 0, "-"
    ring = 2 * (workers - 1) / workers
    gathered = ring * dense + (workers - 1) * sparse
    reduced = ring * (dense + as_dense)
    return (gathered, "rows") if gathered <= reduced else (reduced, "dense")


def link_s(nbytes, messages, gbit):
    return nbytes * 8 / (gbit * 1e9) + messages * LATENCY_S


def scaling_model(x, y, measured):
    print("\n## Gradient bytes per step (measured on one real batch)")
    print("| model | batch | dense buffer | embedding rows (rows, values) | embedding as dense |")
    print("| --- | --- | --- | --- | --- |")
    sizes = {}
    for name, make, xb in (("IMDB LSTM", imdb_lstm, x[:BATCH]),
                           ("Conv1D seed", imdb_conv1d, x[:16, -64:])):
        sizes[name] = gradient_bytes(make(), xb, y[:len(xb)])
        dense, sparse, as_dense = sizes[name]
        print(f"| {name} | {len(xb)} | {dense:,} | {sparse:,} | {as_dense:,} |")
    dense, sparse, as_dense = sizes["IMDB LSTM"]
    per_sample = measured["compute_s"] / (BATCH / 2)  # one thread, one sample
    print(f"\n## Scaling model, IMDB LSTM: {1e3 * per_sample:.2f} ms per sample per core "
          f"(measured), batch {BATCH} per worker (global batch {BATCH} x workers). Cells: "
          "ring allreduce ms / predicted samples/s; in brackets the same through one reducer "
          "(this implementation's driver: its link carries every worker's gradients in and "
          "the average out)")
    print("| link | " + " | ".join(f"{n} worker(s)" for n in WORKERS)
          + " | batch per worker for comm < 10% at 64 workers: ring (one reducer) |")
    print("| --- |" + " --- |" * (len(WORKERS) + 1))
    compute = BATCH * per_sample
    for gbit in LINKS_GBIT:
        cells = []
        for n in WORKERS:
            nbytes, how = wire_bytes(dense, sparse, as_dense, n)
            ring = 0.0 if n == 1 else link_s(nbytes, 2 * (n - 1), gbit)
            star = 0.0 if n == 1 else link_s(n * (dense + sparse) + n * (dense + as_dense), 2,
                                             gbit)
            cells.append(f"{1e3 * ring:.1f} / {n * BATCH / (compute + ring):,.0f} "
                         f"({1e3 * star:.0f} / {n * BATCH / (compute + star):,.0f}) "
                         f"[{how}]")
        ring64 = link_s(wire_bytes(dense, sparse, as_dense, 64)[0], 126, gbit)
        star64 = link_s(64 * (2 * dense + sparse + as_dense), 2, gbit)
        print(f"| {gbit} Gbit/s | " + " | ".join(cells)
              + f" | {9 * ring64 / per_sample:,.0f} ({9 * star64 / per_sample:,.0f}) |")


def measure_predict(docs):
    print(f"\n## Corpus predict, {docs} raw IMDB reviews (tokenized in the workers)")
    (train_texts, _), (test_texts, _) = imdb.load_reviews()
    tokenizer = Tokenizer(num_words=NUM_WORDS)
    tokenizer.fit_on_texts(train_texts[:5000])
    texts = (test_texts * (1 + docs // len(test_texts)))[:docs]
    model = imdb_lstm()
    fastseq.set_num_threads(2)
    model.predict(pad_sequences(tokenizer.texts_to_sequences(texts[:64]), maxlen=MAXLEN),
                  batch_size=BATCH, verbose=0)  # warm-in
    start = time.perf_counter()
    local = model.predict(pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=MAXLEN),
                          batch_size=BATCH, verbose=0)
    local_s = time.perf_counter() - start
    fastseq.set_num_threads(1)
    runs = {}
    for n in (2 * BATCH, docs):  # the small run is the workers' start-up (spawn, import, load)
        start = time.perf_counter()
        remote = corpus_predict(model, texts[:n], batch_size=BATCH, num_workers=2,
                                tokenizer=tokenizer, maxlen=MAXLEN, chunk_size=4 * BATCH)
        runs[n] = time.perf_counter() - start
    remote_s = runs[docs]
    marginal = (docs - 2 * BATCH) / (runs[docs] - runs[2 * BATCH])
    print(f"- model.predict, one process x 2 threads (tokenizing included): "
          f"{docs / local_s:,.0f} docs/s ({local_s:.2f} s)")
    print(f"- fastseq.distributed.predict, 2 workers x 1 thread: {docs / remote_s:,.0f} docs/s "
          f"({remote_s:.2f} s with the workers' start-up, {runs[2 * BATCH]:.2f} s for "
          f"{2 * BATCH} docs); past the start-up {marginal:,.0f} docs/s")
    print(f"- max |difference| of the predictions: {float(np.abs(local - remote).max()):.1e}")


class _Buffer:
    def __init__(self, size):
        self.buffer = np.ones(size, np.float32)

    def get(self):
        return self.buffer

    def set(self, value):
        self.buffer = value


class _Collective(_Buffer):
    def setup(self, world, rank):
        import ray.util.collective as col

        col.init_collective_group(world, rank, backend="gloo", group_name="bench")
        return True

    def allreduce(self, repeats):
        import ray.util.collective as col
        import torch

        tensor = torch.from_numpy(self.buffer)
        start = time.perf_counter()
        for _ in range(repeats):
            col.allreduce(tensor, group_name="bench")
        return (time.perf_counter() - start) / repeats


def measure_reduction(nbytes, repeats=20):
    import ray

    print(f"\n## One allreduce of {nbytes:,} bytes between 2 actors on this machine")
    size = nbytes // 4
    buffers = [ray.remote(_Buffer).remote(size) for _ in range(2)]
    ray.get([b.get.remote() for b in buffers])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        parts = ray.get([b.get.remote() for b in buffers])
        ref = ray.put(parts[0] + parts[1])
        ray.get([b.set.remote(ref) for b in buffers])
        times.append(time.perf_counter() - start)
    print(f"- through the driver (object store): {1e3 * median(times):.2f} ms")
    try:
        group = [ray.remote(_Collective).remote(size) for _ in range(2)]
        ray.get([g.setup.remote(2, r) for r, g in enumerate(group)], timeout=120)
        seconds = ray.get([g.allreduce.remote(repeats) for g in group], timeout=120)
        print(f"- ray.util.collective gloo allreduce: {1e3 * max(seconds):.2f} ms")
    except Exception as err:  # no torch / gloo here: say so
        print(f"- ray.util.collective gloo: not available ({type(err).__name__}: {err})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--docs", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    # logical CPUs: both worker pools stay up for the alternating rounds (2 cores here)
    parser.add_argument("--cpus", type=int, default=4)
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    x, y = load(args.samples)
    measured = measure_epochs(x, y, args.rounds)
    scaling_model(x, y, measured)
    measure_predict(args.docs)
    dense, sparse, _ = gradient_bytes(imdb_lstm(), x[:BATCH], y[:BATCH])
    measure_reduction(dense + sparse)
    ray.shutdown()


if __name__ == "__main__":
    main()
