"""Shared bits of the example scripts: where the data is, the report, training curves."""
import argparse
import os
import sys


def parser(description, epochs, batch_size, maxlen=None, num_words=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=None,
                   help="directory of the real data (imdb_reviews.csv.gz, imdb_word_index.json, "
                        "glove.6B.50d.40k.txt); default: $FASTSEQ_DATA")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    if maxlen is not None:
        p.add_argument("--maxlen", type=int, default=maxlen)
    if num_words is not None:
        p.add_argument("--num-words", type=int, default=num_words)
    p.add_argument("--limit", type=int, default=None,
                   help="use about this many reviews per split (quick runs)")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, shuffling)")
    p.add_argument("--verbose", type=int, default=1, help="fit's verbosity (0, 1 or 2)")
    return p


def data_dir(args):
    path = args.data or os.environ.get("FASTSEQ_DATA")
    if not path:
        sys.exit("no data: pass --data DIR or set FASTSEQ_DATA (see ../shared/data/README.md)")
    if not os.path.isdir(path):
        sys.exit(f"--data {path}: not a directory")
    return path


def report(test_accuracy, timer):
    print(f"Test accuracy: {test_accuracy:.4f}")
    print(f"Seconds per epoch: {timer.mean:.2f} "
          f"({', '.join(f'{s:.2f}' for s in timer.seconds)})")


def save_curves(history, prefix, acc_key="acc"):
    """The seed's two plots (accuracy, loss) as PNG files, when matplotlib is installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no training curves saved")
        return []
    h = history.history
    epochs = range(1, len(h["loss"]) + 1)
    paths = []
    for key, title in ((acc_key, "accuracy"), ("loss", "loss")):
        plt.figure()
        plt.plot(epochs, h[key], "bo", label=f"Training {key}")
        if "val_" + key in h:
            plt.plot(epochs, h["val_" + key], "b", label=f"Validation {key}")
        plt.title(f"Training and validation {title}")
        plt.legend()
        path = f"{prefix}_{title}.png"
        plt.savefig(path)
        plt.close()
        paths.append(path)
    print("Saved training curves: " + ", ".join(paths))
    return paths
