#!/usr/bin/env python3
"""cbam-serve against TorchServe on the same model and the same load, one server at a time, A B A B.

    python3 tools/bench_peers.py [--model models/cbam-resnet10-cifar10] [--cbam-serve label=path ...]
                                 [--rounds 2] [--duration 15] [--concurrency 1,8,32] [--json out.json]

For each round, each server in turn is started cold, checked (first round: the top-1 class of every sample image
must agree with the others'), loaded by wrk at each concurrency (a Lua script rotating the model's sample JPEGs,
`--warmup` seconds first, untimed), and stopped. Printed: images/s, p50/p99, errors, the peak resident memory of
the server's whole process tree (TorchServe: the JVM and its Python workers), and the cold start (spawn to the first
answered prediction), as medians over the rounds; for cbam-serve also the mean batch size of each load and the
engine alone (`cbam-bench`) at that batch size, so that the service overhead (service images/s over engine
images/s at the same batch) is visible.

Both servers get the same batching limits (`--max-batch-size`, `--max-batch-delay-ms`). TorchServe runs
`--torchserve-workers` workers of one PyTorch thread each (2 x 1 was its best setting on the 2-core machine),
through the handler in tools/cbamtools/torchserve_handler.py: the reference PyTorch module with the directory's
weights, PIL + torchvision preprocessing from config.json. `--cbam-serve` may be given more than once (for example
two builds, `before=...` and `after=...`), and `--no-torchserve` leaves TorchServe out.

It installs nothing: what is missing is printed with the command that installs it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cbamtools.machine import cpu_model_and_flags
from cbamtools.server import ROOT, free_port, request

INSTALL_HINTS = {
    "wrk": "apt-get install -y wrk",
    "java": "apt-get install -y openjdk-17-jre-headless",
    "torchserve": "python3 -m pip install torchserve torch-model-archiver",
    "torch-model-archiver": "python3 -m pip install torchserve torch-model-archiver",
    "psutil": "python3 -m pip install psutil",
    "torch": "python3 -m pip install torch torchvision pillow safetensors",
}


def missing_prerequisites(torchserve: bool) -> list[str]:
    needed = ["wrk"] + (["java", "torchserve", "torch-model-archiver"] if torchserve else [])
    missing = [tool for tool in needed if shutil.which(tool) is None]
    # Found, not imported: importing torch here would add half a gigabyte to the process that samples the servers.
    missing += [module for module in ["psutil"] + (["torch"] if torchserve else []) if importlib.util.find_spec(module) is None]
    return missing


# MARK: - Servers


@dataclass
class Server:
    """How to start one server and where to send predictions."""
    label: str
    kind: str                      # "cbam-serve" or "torchserve"
    command: list[str]
    env: dict[str, str]
    port: int
    predict_path: str
    cwd: Path = ROOT
    process: subprocess.Popen | None = None
    log: object = None

    @property
    def predict_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.predict_path}"

    def start(self, probe_image: bytes, timeout_s: float = 180) -> float:
        """Starts the server and returns the seconds from spawn to its first answered prediction (the cold start)."""
        self.log = tempfile.TemporaryFile()
        started = time.monotonic()
        self.process = subprocess.Popen(self.command, cwd=self.cwd, env={**os.environ, **self.env},
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.process.returncode}: {self.output()[-3000:]}")
            try:
                status, _ = request(self.predict_url, data=probe_image, headers={"Content-Type": "image/jpeg"}, timeout=5)
                if status == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.label} answered no prediction within {timeout_s:.0f} s: {self.output()[-3000:]}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM to the whole process group (TorchServe's JVM and workers too), then SIGKILL after 30 s."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        time.sleep(1)   # let the port and the workers go
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process = None


def cbam_serve(label: str, binary: Path, settings: dict[str, str], model: Path, args) -> Server:
    port = free_port()
    return Server(label, "cbam-serve", [str(binary), "serve"], {
        "CBAM_HOST": "127.0.0.1", "CBAM_PORT": str(port), "CBAM_MODEL": str(model), "CBAM_LOG_LEVEL": "warning",
        "CBAM_MAX_BATCH_SIZE": str(args.max_batch_size), "CBAM_MAX_BATCH_DELAY_MS": str(args.max_batch_delay_ms),
        **settings,
    }, port, "/v1/predict")


def parse_cbam_serve(spec: str) -> tuple[str, Path, dict[str, str]]:
    """LABEL=PATH[,CBAM_VAR=VALUE...]: a binary to measure, with settings of its own (CBAM_THREADS=1, say)."""
    label, rest = spec.split("=", 1)
    path, *settings = rest.split(",")
    return label, Path(path), dict(setting.split("=", 1) for setting in settings)


def torchserve(model: Path, work: Path, args) -> Server:
    """Archives the model with the handler into work/store/cbam.mar and writes TorchServe's config.properties."""
    store = work / "store"
    store.mkdir(parents=True, exist_ok=True)
    staging = work / "staging"
    shutil.copytree(ROOT / "tools" / "cbamtools", staging / "cbamtools",
                    ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    # The archiver copies a folder's contents, not the folder: staging/ holds cbamtools/ so that it arrives whole.
    extra = [staging] + [model / name for name in ("config.json", "model.safetensors", "labels.txt")
                                        if (model / name).exists()]
    subprocess.run(["torch-model-archiver", "--model-name", "cbam", "--version", "1.0", "--force",
                    "--handler", str(ROOT / "tools" / "cbamtools" / "torchserve_handler.py"),
                    "--extra-files", ",".join(str(p) for p in extra), "--export-path", str(store)], check=True)
    port, management, metrics = free_port(), free_port(), free_port()
    models = {"cbam": {"1.0": {"defaultVersion": True, "marName": "cbam.mar",
                               "minWorkers": args.torchserve_workers, "maxWorkers": args.torchserve_workers,
                               "batchSize": args.max_batch_size, "maxBatchDelay": round(args.max_batch_delay_ms),
                               "responseTimeout": 120}}}
    (work / "config.properties").write_text("\n".join([
        f"inference_address=http://127.0.0.1:{port}",
        f"management_address=http://127.0.0.1:{management}",
        f"metrics_address=http://127.0.0.1:{metrics}",
        f"model_store={store}",
        "load_models=cbam.mar",
        f"models={json.dumps(models)}",
        "install_py_dep_per_model=false",
        "disable_system_metrics=true",
        "disable_token_authorization=true",
        "enable_model_api=false",
        "",
    ]))
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CBAM_TORCH_THREADS": "1",
           "LOG_LOCATION": str(work / "logs"), "METRICS_LOCATION": str(work / "logs")}
    return Server("torchserve", "torchserve",
                  ["torchserve", "--start", "--foreground", "--ncs", "--disable-token-auth",
                   "--ts-config", str(work / "config.properties"), "--model-store", str(store)],
                  env, port, "/predictions/cbam", cwd=work)


# MARK: - Measuring


class PeakRSS:
    """Samples the resident memory of a process and all its descendants every 50 ms; `peak` in bytes."""

    def __init__(self, pid: int):
        import psutil
        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil
        while not self._stop.is_set():
            total = 0
            try:
                for process in [self.root] + self.root.children(recursive=True):
                    try:
                        total += process.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def wrk_script(images: list[Path], path: Path) -> Path:
    files = ", ".join(json.dumps(str(image)) for image in images)
    path.write_text(f"""-- POSTs the model's sample JPEGs in turn, one per request.
local files = {{{files}}}
local bodies = {{}}
for i, name in ipairs(files) do
  local f = assert(io.open(name, "rb"))
  bodies[i] = f:read("*all")
  f:close()
end
local n = 0
request = function()
  n = n % #bodies + 1
  return wrk.format("POST", nil, {{["Content-Type"] = "image/jpeg"}}, bodies[n])
end
""")
    return path


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(url: str, concurrency: int, seconds: float, script: Path) -> dict:
    """images/s, p50 and p99 in ms, and errors (non-2xx responses and socket errors) of one wrk run."""
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "30s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    def latency(percent: str) -> float:
        m = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(n) for n in m.groups())
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {"images_per_s": float(rate.group(1)) if rate else 0.0, "p50_ms": latency("50"), "p99_ms": latency("99"),
            "errors": errors}


def batch_counts(server: Server) -> tuple[float, float] | None:
    """(images, batches) run so far by a cbam-serve server, from its /metrics."""
    if server.kind != "cbam-serve":
        return None
    _, body = request(f"http://127.0.0.1:{server.port}/metrics")
    values = dict(re.findall(r"^(cbam_inference_batch_size_(?:sum|count)) ([\d.e+]+)$", body.decode(), re.M))
    return float(values.get("cbam_inference_batch_size_sum", 0)), float(values.get("cbam_inference_batch_size_count", 0))


def top1(server: Server, images: list[Path]) -> list[int]:
    answers = []
    for image in images:
        status, body = request(server.predict_url, data=image.read_bytes(), headers={"Content-Type": "image/jpeg"})
        if status != 200:
            raise RuntimeError(f"{server.label} answered {status} for {image.name}: {body[:300]!r}")
        data = json.loads(body)
        predictions = data["predictions"] if isinstance(data, dict) else data
        answers.append(predictions[0]["index"])
    return answers


def engine_images_per_s(binary: Path, model: Path, batch: int, threads: str | None) -> float:
    """The engine alone (cbam-bench, attention maps on, as the service computes them) at `batch` images per pass,
    on the threads the service was given."""
    bench = binary.parent / "cbam-bench"
    out = subprocess.run([str(bench), "--model", str(model), "--batch", str(batch), "--attention",
                          "--iterations", "100", "--warmup", "10"] + (["--threads", threads] if threads else []),
                         capture_output=True, text=True, check=True).stdout
    return batch / json.loads(out)["median_ms"] * 1000


@dataclass
class Results:
    cold_start_s: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)
    loads: dict[int, list[dict]] = field(default_factory=dict)


def measure(server: Server, images: list[Path], script: Path, args, results: Results) -> None:
    sampler = None
    try:
        results.cold_start_s.append(server.start(images[0].read_bytes()))
        sampler = PeakRSS(server.process.pid)
        for concurrency in args.concurrency:
            run_wrk(server.predict_url, concurrency, args.warmup, script)
            before = batch_counts(server)
            load = run_wrk(server.predict_url, concurrency, args.duration, script)
            after = batch_counts(server)
            if before and after and after[1] > before[1]:
                load["mean_batch"] = (after[0] - before[0]) / (after[1] - before[1])
            results.loads.setdefault(concurrency, []).append(load)
            print(f"  {server.label:>12} c{concurrency:<3} {load['images_per_s']:8.1f} images/s  p50 {load['p50_ms']:7.2f} ms"
                  f"  p99 {load['p99_ms']:7.2f} ms  errors {load['errors']}"
                  + (f"  mean batch {load['mean_batch']:.2f}" if "mean_batch" in load else ""), flush=True)
    finally:
        if sampler:
            results.peak_rss.append(sampler.stop())
        server.stop()


# MARK: - Report


def machine() -> str:
    name, simd = cpu_model_and_flags(("fma", "avx2", "avx512f", "avx512bw", "avx512_bf16", "avx512_vnni"))
    return f"{name}, {os.cpu_count()} cores, {' '.join(simd) or 'no AVX2'}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(servers: list[Server], results: dict[str, Results], engine: dict[str, dict[int, float]], args,
           load_before: float) -> str:
    lines = [f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, load average before: "
             f"{load_before:.2f}; medians of {args.rounds} round(s), {args.duration:g} s per load, "
             f"batching {args.max_batch_size} images / {args.max_batch_delay_ms:g} ms for every server", ""]
    labels = [s.label for s in servers]
    lines.append("| | " + " | ".join(labels) + " |")
    lines.append("|---|" + "---:|" * len(labels))
    def row(name: str, cell) -> None:
        lines.append(f"| {name} | " + " | ".join(cell(label) for label in labels) + " |")
    for c in args.concurrency:
        row(f"images/s at concurrency {c}", lambda l: f"{median([r['images_per_s'] for r in results[l].loads[c]]):.1f}")
    for c in args.concurrency:
        row(f"p50 / p99 at concurrency {c} (ms)", lambda l: "{:.1f} / {:.1f}".format(
            median([r['p50_ms'] for r in results[l].loads[c]]), median([r['p99_ms'] for r in results[l].loads[c]])))
    row("errors (all loads, all rounds)", lambda l: str(sum(r["errors"] for c in args.concurrency for r in results[l].loads[c])))
    row("peak resident memory, process tree (MiB)", lambda l: f"{median(results[l].peak_rss) / 2**20:.0f}")
    row("cold start to first prediction (s)", lambda l: f"{median(results[l].cold_start_s):.2f}")
    for c in args.concurrency:
        def overhead(label: str, c=c) -> str:
            batches = [r["mean_batch"] for r in results[label].loads[c] if "mean_batch" in r]
            if label not in engine or not batches:
                return "-"
            batch = max(1, round(median(batches)))
            service = median([r["images_per_s"] for r in results[label].loads[c]])
            return f"batch {median(batches):.2f}: engine {engine[label][batch]:.0f}/s, service {service / engine[label][batch]:.2f}"
        row(f"concurrency {c}: mean batch, engine alone, service/engine", overhead)
    ts = [s.label for s in servers if s.kind == "torchserve"]
    if ts:
        lines.append("")
        for label in labels:
            if label == ts[0]:
                continue
            ratios = [median([r["images_per_s"] for r in results[label].loads[c]])
                      / median([r["images_per_s"] for r in results[ts[0]].loads[c]]) for c in args.concurrency]
            lines.append(f"{label} / TorchServe images/s: " + ", ".join(
                f"{r:.2f}x at c{c}" for r, c in zip(ratios, args.concurrency)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "cbam-resnet10-cifar10")
    parser.add_argument("--cbam-serve", action="append", default=[], metavar="LABEL=PATH",
                        help="a cbam-serve binary to measure, with CBAM_* settings of its own if given "
                             "(LABEL=PATH,CBAM_THREADS=1,...; default: cbam-serve=the release build)")
    parser.add_argument("--no-torchserve", action="store_true")
    parser.add_argument("--torchserve-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-batch-delay-ms", type=float, default=2)
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args(argv)

    missing = missing_prerequisites(not args.no_torchserve)
    if missing:
        print("missing: " + ", ".join(missing) + "\ninstall with:\n  " + "\n  ".join(sorted({INSTALL_HINTS[m] for m in missing})),
              file=sys.stderr)
        return 2
    binaries = [parse_cbam_serve(spec) for spec in args.cbam_serve] or [
        ("cbam-serve", Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                                           capture_output=True, text=True, check=True).stdout.strip()) / "cbam-serve", {})]
    load_before = os.getloadavg()[0]
    model = args.model.resolve()
    images = sorted((model / "samples").glob("*.jpg"))
    if not images:
        print(f"{model}/samples has no JPEGs to send", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="bench-peers-") as scratch:
        work = Path(scratch)
        servers = [cbam_serve(label, binary, settings, model, args) for label, binary, settings in binaries]
        if not args.no_torchserve:
            servers.append(torchserve(model, work / "torchserve", args))
        script = wrk_script(images, work / "post.lua")
        results = {s.label: Results() for s in servers}

        print(f"checking that every server gives the same top-1 on {len(images)} sample images", flush=True)
        answers = {}
        for server in servers:
            try:
                server.start(images[0].read_bytes())
                answers[server.label] = top1(server, images)
            finally:
                server.stop()
        reference = answers[servers[0].label]
        for label, answer in answers.items():
            disagree = [images[i].name for i, (a, b) in enumerate(zip(answer, reference)) if a != b]
            if disagree:
                print(f"{label} disagrees with {servers[0].label} on {disagree}", file=sys.stderr)
                return 1
        print(f"  same top-1 on all {len(images)} images", flush=True)

        for index in range(args.rounds):
            print(f"round {index + 1} of {args.rounds}", flush=True)
            for server in servers:
                measure(server, images, script, args, results[server.label])

        engine: dict[str, dict[int, float]] = {}
        for label, binary, settings in binaries:
            batches = {max(1, round(median([r["mean_batch"] for r in results[label].loads[c] if "mean_batch" in r] or [1])))
                       for c in args.concurrency}
            threads = settings.get("CBAM_THREADS")
            engine[label] = {b: engine_images_per_s(binary, model, b, threads) for b in sorted(batches)}

    text = report(servers, results, engine, args, load_before)
    print()
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"report": text, "machine": machine(),
                                         "results": {k: vars(v) for k, v in results.items()},
                                         "engine": engine}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
