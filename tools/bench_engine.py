#!/usr/bin/env python3
"""Times the Swift engine, PyTorch and ONNX Runtime side by side, in one run, on the same models and inputs.

    swift build -c release --product cbam-bench
    python3 tools/bench_engine.py --threads 1,2          # prints Markdown tables, one pair per thread count

Models: CBAM-ResNet-50 at 224x224 (batch 1 and 8) and CBAM-ResNet-20 for CIFAR at 32x32 (batch 1 and 64), random,
BN statistics measured on random inputs so activations are realistic (no denormals); the default model,
models/cbam-resnet10-cifar10 with its trained weights, at 32x32 (batch 1, 8 and 64); and timm's SE-ResNet-50 and
ECA-ResNet-50d (deep stem, average-pool shortcut) at 224x224, batch 1, random likewise (these two need
`pip install timm==1.0.31`; leave them out with --cases).
Each engine runs `--rounds` rounds of `--iterations` timed passes (after `--warmup`), the engines taking turns
within each round so that a drift in machine load hits all three alike, the engine and ONNX Runtime back to back
(PyTorch after them); the table gives the median over all timed passes. PyTorch runs under torch.inference_mode
with torch.set_num_threads(threads); ONNX Runtime with intra_op_num_threads=threads and all graph optimisations;
the engine with `cbam-bench --threads`.
Before timing, the engine's logits are checked against PyTorch's on the same input. Besides wall-clock time the
table gives process CPU time (all threads), which a machine shared with other jobs disturbs less.
Two more columns show what the medians hide: the lowest and highest ORT / engine of single rounds (each round's
medians, the engine and ORT timed back to back), and in the CPU table the engine's CPU / (wall x threads) over all
of its timed passes together (above 1: it kept more cores busy than it was given). Sums, because the medians of CPU and
wall time come from different passes; in a cell of a few milliseconds in all, the ratio can still be a few percent
off, as Linux adds another core's thread's CPU time to the process in steps of a scheduler tick.
With two or more threads, `cbam-bench --core-probe` runs before the engine's timing, between it and ORT's, and
after ORT's: multiply-add chains on every thread at once, then a cache line's round trip between two threads. A virtual
machine's vCPUs are not always what they seem: this host at times puts two on one physical core (each probe thread
then gets about half of the one-core peak, and a pass on two threads has one core's arithmetic), and at times on
cores far apart (a round trip of 330-460 ns instead of 52-95: separate CCDs, whose L3s are not shared, so every
line one thread writes and the other reads crosses the chip). The wall table counts, per case, the rounds whose
engine or ORT timing had a probe below 75 % of the run's best multiply-add rate ("shared core") or above 200 ns a
round trip ("far apart"); the ratios are over all rounds regardless.
`--before BIN` times a second cbam-bench (an earlier commit's build) in the same rounds, so that a change is
measured side by side with its baseline and the peers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from cbamtools.config import cbam_resnet20_cifar, cbam_resnet50
from cbamtools.machine import cpu_model_and_flags
from cbamtools.model import CBAMResNet, load_model_directory
from cbamtools.random_weights import measure_batchnorm, randomise

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "models" / "cbam-resnet10-cifar10"
TIMM_MODELS = ("seresnet50", "ecaresnet50d")
MODELS = {"cbam-resnet50": (cbam_resnet50, 224), "cbam-resnet20-cifar": (cbam_resnet20_cifar, 32), DEFAULT_MODEL.name: (None, 32)}
MODELS |= {name: (None, 224) for name in TIMM_MODELS}
# A cache line's round trip above which two vCPUs count as far apart (52-95 ns within one CCD on this host,
# 330-460 ns between CCDs).
FAR_APART_NS = 200
CASES = [("cbam-resnet50", 1), ("cbam-resnet50", 8), ("cbam-resnet20-cifar", 1), ("cbam-resnet20-cifar", 64),
         (DEFAULT_MODEL.name, 1), (DEFAULT_MODEL.name, 8), (DEFAULT_MODEL.name, 64), ("seresnet50", 1), ("ecaresnet50d", 1)]


def build_timm_model(name: str, workdir: Path) -> tuple[Path, torch.nn.Module]:
    """timm's own model with random, well-conditioned weights, exported as a model directory whose config
    cbamtools.checkpoint infers from the tensors (as tools/export_checkpoint.py does)."""
    import timm

    from cbamtools.checkpoint import infer_config
    from cbamtools.config import imagenet_input
    model = timm.create_model(name, pretrained=False)
    directory = workdir / name
    if (directory / "model.pt").exists():
        model.load_state_dict(torch.load(directory / "model.pt"))
    else:
        generator = torch.Generator().manual_seed(7)
        randomise(model, generator)
        measure_batchnorm(model, torch.randn((4, 3, 224, 224), generator=generator))
        state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        config, _ = infer_config({k: tuple(v.shape) for k, v in state.items()})
        config |= {"name": name, "input": imagenet_input()}
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(state, directory / "model.safetensors")
        torch.save(model.state_dict(), directory / "model.pt")
    model.eval()
    return directory, model


def build_model(name: str, workdir: Path) -> tuple[Path, torch.nn.Module]:
    if name == DEFAULT_MODEL.name:
        return DEFAULT_MODEL, load_model_directory(DEFAULT_MODEL)[0]
    if name in TIMM_MODELS:
        return build_timm_model(name, workdir)
    make_config, size = MODELS[name]
    config = make_config(name)
    directory = workdir / name
    model = CBAMResNet(config)
    if (directory / "model.pt").exists():
        model.load_state_dict(torch.load(directory / "model.pt"))
    else:
        generator = torch.Generator().manual_seed(7)
        randomise(model, generator)
        measure_batchnorm(model, torch.randn((4, 3, size, size), generator=generator))
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, directory / "model.safetensors")
        torch.save(model.state_dict(), directory / "model.pt")
    model.eval()
    return directory, model


def export_onnx(model: torch.nn.Module, size: int, path: Path) -> None:
    if path.exists():
        return
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)


def time_swift(binary: Path, directory: Path, batch: int, size: int, threads: int, warmup: int,
               iterations: int) -> tuple[list[float], list[float]]:
    out = subprocess.run([str(binary), "--model", str(directory), "--batch", str(batch), "--size", str(size),
                          "--threads", str(threads), "--warmup", str(warmup), "--iterations", str(iterations)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return result["times_ms"], result["cpu_times_ms"]


def core_probe(binary: Path, threads: int, wait: bool = True) -> tuple[float, float]:
    """GFLOP/s of the slowest of `threads` threads running multiply-add chains at the same moment, and nanoseconds of a
    cache line's round trip between two threads. With `wait` it waits 0.1 s first: ONNX Runtime's and PyTorch's pools
    keep their threads spinning for a while after a call, and a probe right after one counted the spinning thread as a
    shared core (every ORT round of the first try)."""
    if wait:
        time.sleep(0.1)
    out = json.loads(subprocess.run([str(binary), "--core-probe", "--threads", str(threads)], check=True,
                                    capture_output=True, text=True).stdout)
    return min(out["gflops"]), out.get("round_trip_ns", 0.0)


def time_calls(run, warmup: int, iterations: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU milliseconds of each call."""
    for _ in range(warmup):
        run()
    times, cpu = [], []
    for _ in range(iterations):
        start, cpu_start = time.perf_counter(), time.process_time()
        run()
        times.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - cpu_start) * 1e3)
    return times, cpu


def check_parity(binary: Path, directory: Path, model: torch.nn.Module, size: int, workdir: Path) -> float:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    np.save(workdir / "parity.npy", x.numpy())
    out = subprocess.run([str(binary), "--model", str(directory), "--input", str(workdir / "parity.npy"),
                          "--warmup", "0", "--iterations", "1"], check=True, capture_output=True, text=True).stdout
    ours = np.array(json.loads(out)["logits"], dtype=np.float32).reshape(2, -1)
    with torch.inference_mode():
        theirs = model(x).numpy()
    return float(np.abs(ours - theirs).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=Path, default=ROOT / ".build" / "release" / "cbam-bench")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated; each gets its tables")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cbam-bench"))
    parser.add_argument("--cases", default=",".join(f"{m}:{b}" for m, b in CASES), help="model:batch,...")
    parser.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--before", type=Path, help="a second cbam-bench (e.g. an earlier commit's build), timed in the "
                        "same rounds: the tables add its time and ORT / before")
    args = parser.parse_args()

    import onnxruntime as ort

    args.workdir.mkdir(parents=True, exist_ok=True)
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    models = {}
    for name in dict.fromkeys(m for m, _ in cases):
        directory, model = build_model(name, args.workdir)
        size = MODELS[name][1]
        error = check_parity(args.bin, directory, model, size, args.workdir)
        print(f"{name}: engine vs PyTorch max abs logit difference {error:.2e}", file=sys.stderr)
        onnx = args.workdir / f"{name}.onnx"
        if not args.no_ort:
            export_onnx(model, size, onnx)
        models[name] = (directory, model, size, onnx)

    engines = ("swift", "before", "torch", "ort")
    results = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        sessions = {}
        if not args.no_ort:
            for name, (_, _, _, onnx) in models.items():
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                sessions[name] = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
        times: dict[tuple[str, int], dict[str, list[float]]] = {c: {e: [] for e in engines} for c in cases}
        cpu: dict[tuple[str, int], dict[str, list[float]]] = {c: {e: [] for e in engines} for c in cases}
        # Per case and table: ORT / engine of each round's medians.
        per_round: dict[tuple[str, int], dict[str, list[float]]] = {c: {"wall": [], "cpu": []} for c in cases}
        # Per case: the lowest multiply-add rate and the longest round trip of the probes around each round's engine
        # and ORT timings (two or more threads).
        probes: dict[tuple[str, int], dict[str, list[tuple[float, float]]]] = {c: {"swift": [], "ort": []} for c in cases}

        def probe(wait: bool = True) -> tuple[float, float] | None:
            return core_probe(args.bin, threads, wait) if threads > 1 else None

        def note(engine: str, case: tuple[str, int], before, after) -> None:
            if before is not None and after is not None:
                probes[case][engine].append((min(before[0], after[0]), max(before[1], after[1])))

        for round_ in range(args.rounds):
            for name, batch in cases:
                directory, model, size, _ = models[name]
                session = sessions.get(name)
                x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(round_))
                t, c = times[(name, batch)], cpu[(name, batch)]

                medians: dict[str, tuple[float, float]] = {}

                def record(engine: str, measured: tuple[list[float], list[float]]) -> None:
                    t[engine] += measured[0]
                    c[engine] += measured[1]
                    medians[engine] = (statistics.median(measured[0]), statistics.median(measured[1]))

                # The engine and ORT back to back, one probe before, between and after them: the host's states last
                # seconds, and a round whose engine and ORT timings fell on either side of a change of state paired a
                # fast pass of one with a slow pass of the other. The engine's process has exited by the second probe,
                # so that one need not wait for spinning threads.
                first = probe()
                record("swift", time_swift(args.bin, directory, batch, size, threads, args.warmup, args.iterations))
                between = probe(wait=False)
                note("swift", (name, batch), first, between)
                if session is not None:
                    xn = x.numpy()
                    record("ort", time_calls(lambda: session.run(None, {"input": xn}), args.warmup, args.iterations))
                    note("ort", (name, batch), between, probe())
                    per_round[(name, batch)]["wall"].append(medians["ort"][0] / medians["swift"][0])
                    per_round[(name, batch)]["cpu"].append(medians["ort"][1] / medians["swift"][1])
                if args.before:
                    record("before", time_swift(args.before, directory, batch, size, threads, args.warmup, args.iterations))
                with torch.inference_mode():
                    record("torch", time_calls(lambda: model(x), args.warmup, args.iterations))
                print(f"threads {threads} round {round_ + 1}/{args.rounds} {name} batch {batch}: "
                      + ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in t.items() if v), file=sys.stderr)
        results.append((threads, os.getloadavg()[0], times, cpu, per_round, probes))
        del sessions

    print(f"\n{cpu_description()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}; median of {args.rounds}x{args.iterations} passes; ratios > 1: engine faster\n")
    peak = max((rate for *_, probes in results for case in probes.values() for v in case.values() for rate, _ in v),
               default=0.0)
    for threads, load, times, cpu, per_round, probes in results:
        print(f"### threads = {threads} (load average {load:.1f} at the end)\n")
        if threads > 1:
            print(f"Core probe: {threads} threads of multiply-add chains, then a cache line's round trip, before the "
                  f"engine's timing, between it and ORT's and after ORT's; best {peak:.0f} GFLOP/s a thread, a round on a shared core below "
                  f"{0.75 * peak:.0f}, on far-apart cores above {FAR_APART_NS} ns a round trip.\n")
        for title, key, table in (("wall-clock", "wall", times), ("process CPU time", "cpu", cpu)):
            print(f"{title}:\n")
            before = " engine before (ms) |" if args.before else ""
            busy = " engine CPU / (wall x threads) |" if key == "cpu" else ""
            shared = (" rounds on a shared core (engine, ORT) | rounds on far-apart cores (engine, ORT) |"
                      if key == "wall" and threads > 1 else "")
            print(f"| model | input | engine (ms) |{before} PyTorch (ms) | ONNX Runtime (ms) | PyTorch / engine | ORT / engine |"
                  + " ORT / engine, rounds |" + (" ORT / before |" if args.before else "") + busy + shared)
            print("|---|---|---:|" + ("---:|" if args.before else "") + "---:|---:|---:|---:|---:|"
                  + ("---:|" if args.before else "") + ("---:|" if busy else "") + ("---:|---:|" if shared else ""))
            for (name, batch), t in table.items():
                size = MODELS[name][1]
                s, p = statistics.median(t["swift"]), statistics.median(t["torch"])
                o = statistics.median(t["ort"]) if t["ort"] else float("nan")
                b = statistics.median(t["before"]) if t["before"] else None
                spread = per_round[(name, batch)][key]
                rounds = f"{min(spread):.2f}-{max(spread):.2f}x" if spread else "-"
                busy_ratio = sum(cpu[(name, batch)]["swift"]) / (sum(times[(name, batch)]["swift"]) * threads)
                low = {e: sum(rate < 0.75 * peak for rate, _ in v) for e, v in probes[(name, batch)].items()}
                far = {e: sum(trip > FAR_APART_NS for _, trip in v) for e, v in probes[(name, batch)].items()}
                sharing = (f" {low['swift']}, {low['ort']} of {args.rounds} | {far['swift']}, {far['ort']} of {args.rounds} |"
                           if shared else "")
                print(f"| {name} | {batch}x3x{size}x{size} | {s:.2f} |" + (f" {b:.2f} |" if b else "")
                      + f" {p:.2f} | {o:.2f} | {p / s:.2f}x | {o / s:.2f}x | {rounds} |" + (f" {o / b:.2f}x |" if b else "")
                      + (f" {busy_ratio:.3f} |" if busy else "") + sharing)
            print()


def cpu_description() -> str:
    """The machine, the CPU's model name and the vector extensions the engine's kernels choose between."""
    name, flags = cpu_model_and_flags(("fma", "avx2", "avx512f", "avx512bw", "avx512vl"))
    return f"{platform.machine()} {name} ({' '.join(flags) or 'no AVX2'})"


if __name__ == "__main__":
    main()
