"""Command line: ``python -m fastseq bench``, ``train``, ``evaluate`` and ``predict``.

    python -m fastseq bench [--quick] [--json] [--family embedding,lstm,...] [--no-torch]
    python -m fastseq bench --device cuda [--quick] [--family embedding,lstm,conv1d,train]
    python -m fastseq train imdb --model lstm|conv1d|flatten --epochs N --data PATH
    python -m fastseq train --data FILE_OR_DIR --model lstm|bilstm|gru|conv1d|flatten --out DIR
    python -m fastseq evaluate --model DIR --data FILE
    python -m fastseq predict --model DIR [--data FILE] [--out predictions.csv]

``python -m fastseq <command> --help`` prints that command's options.
"""
import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys


def _fmt_ms(seconds):
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def _fmt_ratio(ratio):
    return "-" if ratio is None else f"{ratio:.2f}x"


def _torch_timings(args, threads):
    """PyTorch medians from a separate process, or (None, reason)."""
    if args.no_torch or importlib.util.find_spec("torch") is None:
        return None, "not installed" if not args.no_torch else "--no-torch"
    cmd = [sys.executable, "-m", "fastseq._bench.torch_worker", "--threads", str(threads),
           "--min-time", str(args.min_time)]
    if args.quick:
        cmd.append("--quick")
    if args.family:
        cmd += ["--families", args.family]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        print(f"PyTorch worker failed: {tail[0]}", file=sys.stderr)
        return None, "worker failed"
    data = json.loads(proc.stdout)
    return data, None


def _table(rows, torch_info, peak_gflops, copy_gbs):
    head = ["family", "op", "shape", "numpy ms", "fastseq ms", "speed-up"]
    if torch_info:
        head += ["torch ms", "vs torch"]
    head += ["achieved"]
    lines = []
    for r in rows:
        line = [r["family"], r["name"], r["shape"], _fmt_ms(r["baseline_s"]),
                _fmt_ms(r["fastseq_s"]), _fmt_ratio(r["speedup"])]
        if torch_info:
            t = r.get("torch_s")
            line += [_fmt_ms(t), _fmt_ratio(t / r["fastseq_s"] if t else None)]
        if r["gflops"]:
            share = 100 * r["gflops"] / peak_gflops
            line.append(f"{r['gflops']:.1f} GFLOP/s ({share:.0f}% of GEMM peak)")
        elif r["gbs"]:
            line.append(f"{r['gbs']:.1f} GB/s ({100 * r['gbs'] / copy_gbs:.0f}% of copy)")
        else:
            line.append(r.get("note_short", ""))
        lines.append(line)
    return _markdown(head, lines)


def _markdown(head, lines):
    """A Markdown table, its columns padded to their widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for line in lines:
        out.append("| " + " | ".join(str(x).ljust(w) for x, w in zip(line, widths)) + " |")
    return "\n".join(out)


def bench(args):
    import numpy as np

    import fastseq
    from fastseq._bench import load_cases
    from fastseq._bench.core import copy_bandwidth_gbs, gemm_peak_gflops, run_case

    if args.threads:
        fastseq.set_num_threads(args.threads)
    threads = fastseq.get_num_threads()
    families = [f for f in args.family.split(",") if f] if args.family else None
    cases = load_cases(families, quick=args.quick)
    # PyTorch first, in its own process, while this one is idle.
    torch_data, torch_reason = _torch_timings(args, threads)
    peak = gemm_peak_gflops(np.float32)
    copy_gbs = copy_bandwidth_gbs()
    rows = []
    try:
        from tqdm import tqdm
        progress = tqdm(cases, desc="bench", unit="case", file=sys.stderr,
                        disable=args.json and not sys.stderr.isatty())
    except ImportError:  # pragma: no cover - tqdm is a dependency
        progress = cases
    for case in progress:
        if hasattr(progress, "set_postfix_str"):
            progress.set_postfix_str(f"{case.family} {case.name} {case.shape}")
        row = run_case(case, min_time=args.min_time)
        if torch_data:
            row["torch_s"] = torch_data["results"].get(case.key)
        rows.append(row)
    info = {
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": threads,
        "numpy": np.__version__,
        "fastseq": fastseq.__version__,
        "gemm_peak_gflops_f32": peak,
        "copy_gbs": copy_gbs,
        "torch": torch_data["torch_version"] if torch_data else None,
    }
    if args.json:
        json.dump({"info": info, "results": rows}, sys.stdout, indent=1)
        print()
        return 0
    print(f"fastseq {fastseq.__version__}, {threads} threads, NumPy {np.__version__}; "
          f"GEMM peak {peak:.0f} GFLOP/s (float32, measured now), copy {copy_gbs:.1f} GB/s; "
          f"PyTorch: {torch_data['torch_version'] if torch_data else torch_reason}")
    print("medians; speed-up = numpy / fastseq, vs torch = torch / fastseq (>1: fastseq faster)")
    print(_table(rows, torch_data, peak, copy_gbs))
    return 0


def bench_cuda(args):
    """The GPU kernels and the IMDB training step, timed with cuda.synchronize(), against
    the same calls on the CPU."""
    import numpy as np

    import fastseq
    from fastseq._bench import cuda as cuda_cases
    from fastseq._bench.core import run_case
    from fastseq._kernels.cuda import SIMULATOR, gemm_backend

    if args.threads:
        fastseq.set_num_threads(args.threads)
    families = [f for f in args.family.split(",") if f] if args.family else None
    cases = cuda_cases.cases(quick=args.quick, families=families, simulator=SIMULATOR)
    from numba import cuda

    device = "CUDA simulator (NUMBA_ENABLE_CUDASIM=1; tiny shapes, times mean nothing)" \
        if SIMULATOR else cuda.get_current_device().name
    if isinstance(device, bytes):
        device = device.decode()
    rows = []
    for case in cases:
        print(f"bench cuda: {case.family} {case.name} {case.shape}", file=sys.stderr)
        rows.append(run_case(case, min_time=args.min_time))
    info = {"device": device, "gemm_backend": gemm_backend(), "simulator": SIMULATOR,
            "cpu_threads": fastseq.get_num_threads(), "numpy": np.__version__,
            "fastseq": fastseq.__version__}
    if args.json:
        json.dump({"info": info, "results": rows}, sys.stdout, indent=1)
        print()
        return 0
    print(f"fastseq {fastseq.__version__} on {device}; GEMM: {gemm_backend()} "
          f"({'cuBLAS binding' if gemm_backend() != 'numba' else 'our tiled numba kernel'}); "
          f"CPU baseline on {fastseq.get_num_threads()} threads")
    print("medians, each GPU call followed by cuda.synchronize(); speed-up = cpu / cuda")
    head = ["family", "op", "shape", "cpu ms", "cuda ms", "speed-up", "achieved"]
    lines = []
    for r in rows:
        achieved = (f"{r['gflops']:.1f} GFLOP/s" if r["gflops"] else
                    f"{r['gbs']:.1f} GB/s" if r["gbs"] else "")
        lines.append([r["family"], r["name"], r["shape"], _fmt_ms(r["baseline_s"]),
                      _fmt_ms(r["fastseq_s"]), _fmt_ratio(r["speedup"]), achieved])
    print(_markdown(head, lines))
    return 0


def build_parser():
    """The command line's parser; each subcommand is a sub-parser with its own --help."""
    from fastseq import _cli_userdata

    parser = argparse.ArgumentParser(prog="python -m fastseq")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="time every kernel against its NumPy baseline")
    b.add_argument("--quick", action="store_true", help="small shapes, short timing")
    b.add_argument("--json", action="store_true", help="machine-readable output")
    b.add_argument("--family", default="",
                   help="comma-separated: embedding,lstm,gru,simple_rnn,conv1d,train,preprocessing")
    b.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    b.add_argument("--threads", type=int, default=0, help="threads (default: all cores)")
    b.add_argument("--min-time", type=float, default=None, help="seconds of timing per call")
    b.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    t = sub.add_parser("train", help="train on your own texts, or a seed model on IMDB",
                       description=_cli_userdata.TRAIN_DESCRIPTION,
                       epilog=_cli_userdata.TRAIN_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _cli_userdata.add_train_arguments(t)
    e = sub.add_parser("evaluate", help="evaluate a trained folder on labelled texts",
                       description=_cli_userdata.EVALUATE_DESCRIPTION)
    _cli_userdata.add_evaluate_arguments(e)
    p = sub.add_parser("predict", help="classify texts with a trained folder",
                       description=_cli_userdata.PREDICT_DESCRIPTION)
    _cli_userdata.add_predict_arguments(p)
    return parser


def _subparser(parser, name):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def main(argv=None):
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command == "bench":
        if args.min_time is None:
            args.min_time = 0.05 if args.quick else 0.4
        if args.device == "cuda":
            from fastseq._device import cuda_status

            usable, reason = cuda_status()
            if not usable:
                print(f"python -m fastseq bench --device cuda: {reason}", file=sys.stderr)
                return 2
            return bench_cuda(args)
        return bench(args)
    from fastseq import _cli_userdata

    if args.command in ("evaluate", "predict"):
        run = getattr(_cli_userdata, args.command)
        return run(args, _subparser(parser, args.command))
    train_parser = _subparser(parser, "train")
    if args.dataset == "imdb":  # the seed models: their own parser and options
        from fastseq import _cli_train

        return _cli_train.main(argv[argv.index("train") + 1:])
    if args.data is None:
        train_parser.error("give 'imdb' (the tutorial models) or --data FILE_OR_DIR (your "
                           "own labelled texts)")
    return _cli_userdata.train(args, train_parser)


if __name__ == "__main__":
    sys.exit(main())
