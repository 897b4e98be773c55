#!/usr/bin/env python3
"""Top-1 accuracy of a model on labelled JPEGs, through the running HTTP service or with PyTorch.

Service mode (stdlib only): every file is sent as its own upload, `POST /v1/predict` with body image/jpeg,
from --threads concurrent connections so the service's batching is exercised; reports top-1 and images/s.

    python3 tools/evaluate_service.py --url http://127.0.0.1:8080 --data /path/to/train \
        --files models/cbam-resnet10-cifar10/validation_files.txt --threads 16 --predictions-out service.json

PyTorch mode: the same files through the reference model (tools/cbamtools/model.py) with the model directory's weights and torchvision's
preprocessing (Image.open(f).convert("RGB"), Resize(resize), CenterCrop(size), ToTensor, Normalize):

    python3 tools/evaluate_service.py --pytorch models/cbam-resnet10-cifar10 --data ... --files ... \
        --predictions-out pytorch.json --compare service.json

--files lists paths relative to --data, one a line, each under a directory named after its class
(<class>/<file>.jpg); the class index is the class's line in the model directory's labels.txt.
Prints one JSON object; --compare also counts the files on which the two runs' predictions differ.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from cbamtools.config import read_labels


class EvaluationError(Exception):
    pass


def read_files(list_path: Path | None, data: Path) -> list[str]:
    if list_path is None:
        files = sorted(str(p.relative_to(data)) for p in data.glob("*/*.jpg"))
    else:
        files = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
    if not files:
        raise EvaluationError(f"no files to evaluate (from {list_path or data})")
    return files


def true_index(rel: str, labels: list[str]) -> int:
    cls = Path(rel).parent.name
    if cls not in labels:
        raise EvaluationError(f"{rel}: directory {cls!r} is not one of the labels {labels}")
    return labels.index(cls)


class ServiceClient:
    """One persistent HTTP/1.1 connection per thread; reconnects once when the server closed it."""

    def __init__(self, url: str, api_key: str | None, model: str | None, timeout: float):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EvaluationError(f"--url {url!r} must look like http://host:port")
        self.https, self.host, self.port = parts.scheme == "https", parts.hostname, parts.port
        base = parts.path.rstrip("/")
        self.path = f"{base}/v1/models/{model}/predict?top_k=1" if model else f"{base}/v1/predict?top_k=1"
        self.headers = {"Content-Type": "image/jpeg", "Accept": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = timeout
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self.local.conn = conn
        return conn

    def predict(self, body: bytes) -> tuple[int, dict]:
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request("POST", self.path, body=body, headers=self.headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                conn.close()
                self.local.conn = None
                if attempt == 1:
                    raise
        try:
            data = json.loads(payload)
        except json.JSONDecodeError:
            data = {"error": {"code": "not_json", "message": payload[:200].decode("utf-8", "replace")}}
        return response.status, data


def predicted_index(data: dict, labels: list[str]) -> int:
    top = data["predictions"][0]
    if "index" in top:
        return int(top["index"])
    return labels.index(top["label"])


def evaluate_service(args, files: list[str], labels: list[str]) -> dict:
    client = ServiceClient(args.url, args.api_key, args.model, args.timeout)
    bodies = [(args.data / rel).read_bytes() for rel in files]  # read first, so disk time is not counted

    def one(i: int) -> tuple[int, int | None, float, str | None]:
        t0 = time.perf_counter()
        try:
            status, data = client.predict(bodies[i])
        except (OSError, http.client.HTTPException) as e:
            return i, None, time.perf_counter() - t0, f"{type(e).__name__}: {e}"
        latency = time.perf_counter() - t0
        if status != 200:
            err = data.get("error", {}) if isinstance(data, dict) else {}
            return i, None, latency, f"HTTP {status} {err.get('code', '')}: {err.get('message', '')}".strip()
        try:
            return i, predicted_index(data, labels), latency, None
        except (KeyError, IndexError, ValueError, TypeError) as e:
            return i, None, latency, f"unexpected response {str(data)[:200]}: {e}"

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        results = list(pool.map(one, range(len(files))))
    elapsed = time.perf_counter() - t0
    predictions = {files[i]: p for i, p, _, _ in results}
    errors = [(files[i], e) for i, _, _, e in results if e]
    latencies = sorted(lat for _, _, lat, e in results if not e)
    summary = summarize("service", files, labels, predictions, elapsed)
    summary.update({"url": args.url, "threads": args.threads, "errors": len(errors), "first_errors": errors[:5],
                    "latency_ms": latency_summary(latencies)})
    return summary


def latency_summary(latencies: list[float]) -> dict:
    if not latencies:
        return {}

    def pct(q: float) -> float:
        return round(1000 * latencies[min(int(q * len(latencies)), len(latencies) - 1)], 2)
    return {"mean": round(1000 * statistics.fmean(latencies), 2), "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)}


def evaluate_pytorch(args, files: list[str], labels: list[str]) -> dict:
    import torch
    from PIL import Image

    from cbamtools.model import load_model_directory

    try:
        model, preprocess, _ = load_model_directory(Path(args.pytorch))
    except ValueError as e:
        raise EvaluationError(str(e)) from None
    torch.set_num_threads(args.torch_threads)
    predictions: dict[str, int] = {}
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(files), args.batch_size):
            chunk = files[start:start + args.batch_size]
            batch = torch.stack([preprocess(Image.open(args.data / rel).convert("RGB")) for rel in chunk])
            for rel, p in zip(chunk, model(batch).argmax(1).tolist()):
                predictions[rel] = p
    summary = summarize("pytorch", files, labels, predictions, time.perf_counter() - t0)
    summary["model_dir"] = str(args.pytorch)
    return summary


def summarize(mode: str, files: list[str], labels: list[str], predictions: dict[str, int | None], elapsed: float) -> dict:
    correct = sum(1 for rel in files if predictions.get(rel) == true_index(rel, labels))
    return {"mode": mode, "images": len(files), "correct": correct, "top1": round(correct / len(files), 5),
            "seconds": round(elapsed, 3), "images_per_s": round(len(files) / elapsed, 1) if elapsed > 0 else None,
            "predictions": predictions}


def compare(predictions: dict[str, int | None], other_path: Path) -> dict:
    other = json.loads(other_path.read_text())
    other = other.get("predictions", other)
    common = [f for f in predictions if f in other]
    differ = [f for f in common if predictions[f] != other[f]]
    return {"against": str(other_path), "common_files": len(common), "differ": len(differ),
            "differ_fraction": round(len(differ) / len(common), 5) if common else None, "first_differ": differ[:10]}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="root of <class>/<file>.jpg")
    ap.add_argument("--files", type=Path, help="list of files relative to --data (default: every */*.jpg)")
    ap.add_argument("--model-dir", type=Path, help="where labels.txt is read (default: --pytorch's, else CIFAR-10's classes)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files")
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--model", help="send to /v1/models/{model}/predict instead of /v1/predict")
    ap.add_argument("--api-key", help="sent as Authorization: Bearer <key>")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    ap.add_argument("--pytorch", metavar="MODEL_DIR", help="evaluate with PyTorch instead of the service")
    ap.add_argument("--batch-size", type=int, default=250, help="PyTorch mode")
    ap.add_argument("--torch-threads", type=int, default=2, help="PyTorch mode")
    ap.add_argument("--predictions-out", type=Path, help="write the summary with per-file predictions here")
    ap.add_argument("--compare", type=Path, help="a --predictions-out file of another run to compare with")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        files = read_files(args.files, args.data)
        if args.limit:
            files = files[:args.limit]
        labels = read_labels(args.model_dir or (Path(args.pytorch) if args.pytorch else None))
        for rel in files:
            true_index(rel, labels)
        summary = evaluate_pytorch(args, files, labels) if args.pytorch else evaluate_service(args, files, labels)
    except (EvaluationError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    predictions = summary.pop("predictions")
    if args.compare:
        summary["compare"] = compare(predictions, args.compare)
    if args.predictions_out:
        args.predictions_out.write_text(json.dumps({**summary, "predictions": predictions}, indent=1) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if not summary.get("errors") else 1


if __name__ == "__main__":
    sys.exit(main())
