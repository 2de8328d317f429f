"""train-gpu: run the user's training command inside an MLflow run, on the GPU when there is one.

The stage creates the run and hands it to the command through MLFLOW_RUN_ID (so `mlflow.start_run()`
and autologging in the user's script log into it), records where and how it trained (commit,
workflow run, GPUs, versions, pip freeze, the params file), streams the command's output live,
enforces a timeout on the whole process tree, and makes sure the run ends with exactly one model:
the one the script logged, or `$MLCICD_MODEL_DIR/model.pt` / an MLflow model directory there.
Training is skipped when a registered version already carries the same fingerprint.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcicd import __version__, github, tracking
from mlcicd.config import Option, Stage, boolean, number, text, text_list
from mlcicd.errors import CHECK_FAILED, PASSED, UsageError
from mlcicd.report import check_report_path, default_report_path, markdown_table, write_json

NAME = "train-gpu"
TAIL_LINES = 50
KILL_GRACE_SECONDS = 5  # GitHub kills a cancelled step ~10 s after its SIGINT: leave time to mark the run


def nproc(value: Any) -> str:
    raw = text(value).strip().lower() or "1"
    if raw == "auto" or (raw.isdigit() and int(raw) >= 1):
        return raw
    raise ValueError(f"{value!r} is not `auto` or a whole number >= 1")


OPTIONS = (
    Option(
        "command",
        text,
        "",
        "the training command. It is split into words like a shell command line (quotes work) but not run "
        "by a shell: no variables, globs, pipes or `&&`. Wrap it in `bash -c '…'` if you need a shell. It "
        "runs in `working-directory`, with the environment listed under The environment in the train-gpu docs",
        "python train.py --params params.yaml",
        shown_default="none (required, here or in `mlcicd.yaml`)",
    ),
    Option(
        "working-directory",
        text,
        "",
        "directory the command runs in. `fingerprint-paths` are relative to it",
        "training",
        is_path=True,
        shown_default="the current directory (in a workflow, the workspace)",
    ),
    Option(
        "model-name",
        tracking.registered_model_name,
        "",
        "the registered model this training produces: where the skip looks for a version with the same "
        "fingerprint, and the default experiment; tagged on the run (`mlcicd.model_name`), where "
        "check-gates finds it. train-gpu does not register the model itself. Checked by MLflow's own rules "
        "(no `/`, `:` or control characters such as a newline) before anything runs: exit 2 `invalid value "
        "for model-name`",
        "churn-classifier",
        shown_default="none (required, here or in `mlcicd.yaml`)",
    ),
    Option(
        "experiment",
        text,
        "",
        "MLflow experiment of the run, created on first use (in the embedded store with its artifacts under "
        "`$MLCICD_HOME/artifacts/<experiment>`). A deleted experiment of that name is an error (exit 2)",
        "churn",
        shown_default="the model name",
    ),
    Option(
        "run-name",
        text,
        "",
        "MLflow run name",
        "nightly-retrain",
        shown_default="`ci-<first 7 characters of the commit>`; `local-<YYYYMMDD-HHMMSS>` when no commit is known",
    ),
    Option(
        "params",
        text,
        "",
        "training parameters file, YAML or JSON. It is logged as an artifact and as flattened run params "
        "and is part of the fingerprint. It is not passed to the command: give the path in `command` too",
        "params.yaml",
        is_path=True,
    ),
    Option(
        "require-gpu",
        boolean,
        True,
        "with `true`, a runner without a GPU stops the step with exit 2. With `false`, such a runner trains on CPU and a warning says so",
        "false",
    ),
    Option(
        "nproc-per-node",
        nproc,
        "1",
        "processes to start: `1`, `auto` (one per detected GPU; 1 without a GPU) or a whole number. Above 1 "
        "the command runs under `torchrun --standalone`",
        "auto",
    ),
    Option(
        "timeout-minutes",
        number(positive=True),
        360.0,
        "minutes after which the command's whole process tree is killed and the step fails. Fractions are allowed; must be greater than 0",
        "90",
    ),
    Option(
        "retrain",
        boolean,
        False,
        "with `true`, train even when a registered version has the same fingerprint (the registry is not searched)",
        "true",
    ),
    Option(
        "fingerprint-paths",
        text_list,
        [],
        'globs (`**` for any depth) of the code and config whose content defines "the same training", '
        "relative to `working-directory`, comma- or newline-separated (in `mlcicd.yaml` also a YAML list). "
        "Every glob must match at least one file. Empty: every file git tracks under `working-directory` "
        "counts instead",
        "train.py,src/**/*.py",
    ),
    Option(
        "data",
        text_list,
        [],
        "the data your command trains on: files, directories or globs, comma- or newline-separated (in "
        "`mlcicd.yaml` a YAML list, relative to the file). The content of every file they name is part of "
        "the fingerprint, so a change to the data alone trains again. Each must exist. A warning says when "
        "they leave out what validate-data checks",
        "data/train.parquet",
        is_path=True,
        shown_default="validate-data's `data` in the same config file",
    ),
    Option(
        "data-digest",
        text,
        "",
        "content hash of the training data, e.g. validate-data's `data-digest` output. Part of the fingerprint; tagged on the run",
        "sha256:1792…",
    ),
    Option(
        "signature-data",
        text,
        "",
        "data file (or directory or glob, read as validate-data reads `data`) whose first 64 rows become "
        "the input example, and so the signature, of a model handed over as `$MLCICD_MODEL_DIR/model.pt`. "
        "Not used for other models",
        "data/train.parquet",
        is_path=True,
    ),
    Option("target", text, "", "label column dropped from `signature-data` when present", "churned"),
    Option(
        "reference-profile",
        text,
        "",
        "the training data's reference profile (`mlcicd profile`), stored with the version as "
        "`mlcicd/reference-profile.json` so monitor measures drift against it. It is checked before the run "
        "is created: a missing or malformed profile is exit 2",
        "reference.json",
        is_path=True,
        shown_default="validate-data's `reference` in the same config file; none without one",
    ),
    Option("report", text, default_report_path(NAME), "where to write the JSON report", "reports/train-gpu.json", is_path=True),
)


# --- GPU detection --------------------------------------------------------------------------


def detect_gpus() -> dict[str, Any]:
    """GPUs seen by torch.cuda and nvidia-smi (either may be missing on a runner)."""
    info: dict[str, Any] = {"count": 0, "names": [], "memory_mib": [], "driver": None, "cuda": None, "torch": None, "source": None}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            props = [torch.cuda.get_device_properties(i) for i in range(count)]
            info.update(
                count=count, names=[p.name for p in props], memory_mib=[p.total_memory // 2**20 for p in props], source="torch.cuda"
            )
    except Exception as exc:  # noqa: BLE001 - a broken CUDA install must not hide nvidia-smi's answer
        info["torch_error"] = f"{type(exc).__name__}: {exc}"
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            rows = [[c.strip() for c in line.split(",")] for line in out.stdout.strip().splitlines() if line.strip()]
            if out.returncode == 0 and rows:
                info["driver"] = rows[0][2]
                if not info["count"]:
                    info.update(
                        count=len(rows), names=[r[0] for r in rows], memory_mib=[int(float(r[1])) for r in rows], source="nvidia-smi"
                    )
        except (OSError, subprocess.SubprocessError, IndexError, ValueError):
            pass
    return info


def device_label(gpus: dict[str, Any]) -> str:
    if not gpus["count"]:
        return "cpu"
    names = sorted(set(gpus["names"]))
    return f"cuda:{' + '.join(names)} x{gpus['count']}"


def check_gpu(gpus: dict[str, Any], require: bool) -> None:
    if gpus["count"]:
        return
    runner = os.environ.get("RUNNER_NAME", platform.node())
    why = gpus.get("torch_error") or ("torch is not importable" if gpus["torch"] is None else f"torch {gpus['torch']} sees no CUDA device")
    if require:
        raise UsageError(
            "no GPU on this runner",
            f"runner `{runner}` has no GPU ({why}; nvidia-smi {'found none' if shutil.which('nvidia-smi') else 'is not installed'}). "
            "Run this job on a GPU runner (e.g. `runs-on: [self-hosted, gpu]`, the `gpu-runner` input of train.yml) "
            "or set `require-gpu: false` to train on CPU.",
        )
    github.warning(f"runner `{runner}` has no GPU ({why}): TRAINING ON CPU because require-gpu is false.", title=f"{NAME}: training on CPU")


# --- fingerprint ----------------------------------------------------------------------------


def training_data(values: dict[str, Any]) -> list[str]:
    """The data the fingerprint covers: `data`, else validate-data's `data` in the same config file (the one
    declared data path), else none. Training data that validate-data does not check is worth a warning."""
    validated = ""
    if values.get("config"):
        from mlcicd.config import section_of

        validated = section_of(values, "validate-data").get("data", "")
    if not values["data"]:
        return [validated] if validated else []
    if validated and os.path.normpath(validated) not in {os.path.normpath(d) for d in values["data"]}:
        github.warning(
            f"the command trains on {', '.join(values['data'])}, but validate-data checks {validated}: the training data is "
            "not validated. Point validate-data's `data` at what training reads.",
            title=f"{NAME}: training data not validated",
        )
    return values["data"]


def data_fingerprint(specs: list[str]) -> tuple[str, list[str]]:
    """Content hash of every file the data specs name ('' without any), and the files."""
    from mlcicd.data import data_digest, resolve_files

    files = sorted({f for spec in specs for f in resolve_files(spec, option="data")}, key=str)
    return (data_digest(files) if files else ""), [str(f) for f in files]


def fingerprint(values: dict[str, Any], workdir: Path, data: str = "") -> tuple[str, list[str]]:
    """sha256 of the fingerprint files' contents, the params file, the command, the data digest and the content
    of the training data (`data`, from data_fingerprint)."""
    digest = hashlib.sha256()
    files: set[Path] = set()
    for pattern in values["fingerprint-paths"]:
        matched = [Path(p) for p in glob.glob(pattern, root_dir=workdir, recursive=True)]
        matched = [p for p in matched if (workdir / p).is_file()]
        if not matched:
            raise UsageError(
                "fingerprint path matches nothing",
                f"`{pattern}` (in fingerprint-paths) matches no file under {workdir}. Fix the glob or remove it.",
            )
        files.update(matched)
    if not values["fingerprint-paths"]:
        # No globs given: every file git tracks under the working directory counts, so a code
        # change can never be mistaken for "the same training" (retraining too often is the safe side).
        tracked = git_tracked(workdir)
        if tracked is None:
            github.warning(
                f"{workdir} is not in a git checkout and `fingerprint-paths` is empty: only the command, params and data digest "
                "define the fingerprint, so a code change alone would reuse the old model. Set `fingerprint-paths`.",
                title=f"{NAME}: weak fingerprint",
            )
        else:
            digest.update(f"git\0{tracked}\0".encode())
    if values["params"]:
        files.add(Path(os.path.relpath(values["params"], workdir)))
    for rel in sorted(files, key=str):
        digest.update(f"file\0{rel.as_posix()}\0".encode() + hashlib.sha256((workdir / rel).read_bytes()).digest())
    digest.update(f"command\0{values['command']}\0nproc\0{values['nproc-per-node']}\0data\0{values['data-digest']}".encode())
    if data:
        digest.update(f"training-data\0{data}".encode())
    return "sha256:" + digest.hexdigest(), sorted(str(f) for f in files)


def git_tracked(workdir: Path) -> str | None:
    """`git ls-files -s` of the directory (blob hashes of every tracked file), or None outside git."""
    try:
        out = subprocess.run(["git", "-C", str(workdir), "ls-files", "-s", "--", "."], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def find_trained_version(model_name: str, fp: str) -> Any | None:
    from mlflow import MlflowClient

    versions = MlflowClient().search_model_versions(f"name='{model_name}' and tags.`{tracking.TAG_FINGERPRINT}` = '{fp}'")
    return max(versions, key=lambda v: int(v.version)) if versions else None


# --- the user's command ---------------------------------------------------------------------


def launch_argv(command: str, procs: int) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError("command does not parse", f"`command`: {exc}. Quote it as you would in a shell.") from None
    if not argv:
        raise UsageError("missing command", "`command` is required, e.g. `python train.py --params params.yaml`.")
    if procs <= 1:
        return argv
    run = ["--standalone", f"--nproc-per-node={procs}"]
    if Path(argv[0]).name.startswith("python"):
        # torchrun as a module of the user's own interpreter, so it has their torch
        return [argv[0], "-m", "torch.distributed.run", *run, *argv[1:]]
    return ["torchrun", *run, "--no-python", *argv]


def check_command(program: str, workdir: Path) -> None:
    """A command that cannot start is found before the MLflow run exists (no FAILED run left behind)."""
    if os.sep in program:
        if not (workdir / program).is_file():
            raise UsageError("command not found", f"`{program}` does not exist in {workdir}. Fix `command` or `working-directory`.")
        return
    if shutil.which(program) is None:
        raise UsageError("command not found", f"`{program}` is not on PATH of this runner. Fix `command` or install it.")


def exit_reason(code: int) -> str:
    """How the command ended, in words: a signal is named, and SIGKILL's usual sender too."""
    if code >= 0:
        return f"exited with {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"was killed by signal {-code}"
    said = f"was killed by signal {-code} ({name})"
    if name == "SIGKILL":
        said += ", which is what the kernel's OOM killer sends: check the runner's memory (`dmesg`) or lower the batch size"
    return said


def child_map() -> dict[int, list[int]]:
    """parent pid -> child pids, from /proc (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            if fields[0] == b"Z":
                continue  # already dead, only waiting to be reaped
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return children


def descendants(pid: int) -> list[int]:
    children, found, stack = child_map(), [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def become_subreaper() -> bool:
    """Orphans of the training (a worker whose parent died) are re-parented to us, not to init,
    so they can still be found and killed. Linux only; elsewhere the process group has to do."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2 :].split()[0] != b"Z"
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


class Training:
    """Runs the command, tees its output, and kills everything it started on timeout, on cancel and
    when it exits: its process group, and every descendant, including torchrun workers that sit in
    sessions of their own."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> None:
        self.argv, self.cwd, self.env, self.timeout_s = argv, cwd, env, timeout_s
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.timed_out = False
        self.cancelled = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.subreaper = become_subreaper()
        self._lock = threading.RLock()

    def _targets(self) -> list[int]:
        assert self.proc is not None
        found = descendants(os.getpid()) if self.subreaper else [self.proc.pid, *descendants(self.proc.pid)]
        return [pid for pid in found if pid != os.getpid()]

    def _signal_all(self, sig: int, pids: list[int]) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def _reap(self, pids: list[int]) -> None:
        for pid in pids:
            if self.proc is not None and pid == self.proc.pid:
                continue  # Popen.wait() owns its own child's exit status
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

    def kill_tree(self) -> None:
        if self.proc is None:
            return
        with self._lock:
            pids = self._targets()
            self._signal_all(signal.SIGTERM, pids)
            deadline = time.monotonic() + KILL_GRACE_SECONDS
            while time.monotonic() < deadline:
                self._reap(pids)
                pids = [p for p in set(pids + self._targets()) if alive(p)]
                # alive(), not poll(): inside a signal handler that interrupted Popen.wait(), poll()
                # cannot take Popen's lock and always says "running".
                if not pids and not alive(self.proc.pid):
                    return
                time.sleep(0.1)
            self._signal_all(signal.SIGKILL, pids + self._targets())
            self._reap(pids)

    def _on_timeout(self) -> None:
        self.timed_out = True
        self.kill_tree()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.cancelled = True
        self.kill_tree()

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            self.tail.append(line.rstrip("\n"))

    def run(self) -> int:
        try:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
            )
        except FileNotFoundError:
            raise UsageError("command not found", f"`{self.argv[0]}` is not on PATH of this runner. Fix `command` or install it.") from None
        except PermissionError:
            raise UsageError("command not executable", f"`{self.argv[0]}` is not executable.") from None
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        pump = threading.Thread(target=self._pump, daemon=True)
        pump.start()
        timer = threading.Timer(self.timeout_s, self._on_timeout)
        timer.daemon = True
        timer.start()
        try:
            code = self.proc.wait()
            timer.cancel()
            # Background processes the command left behind would hold the log pipe open and
            # keep running on the GPU after the step: they end with the command.
            self.kill_tree()
            pump.join(KILL_GRACE_SECONDS)
            return code
        finally:
            timer.cancel()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# --- model hand-off -------------------------------------------------------------------------


def logged_model_uri(run_id: str, experiment_id: str) -> str | None:
    """The model the user's script logged in this run: an MLflow 3 LoggedModel or an MLmodel directory."""
    import mlflow
    from mlflow import MlflowClient

    models = mlflow.search_logged_models(experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'", output_format="list")
    if models:
        chosen = max(models, key=lambda m: m.creation_timestamp or 0)
        return f"models:/{chosen.model_id}"
    client = MlflowClient()
    for item in client.list_artifacts(run_id):
        if item.is_dir and any(child.path.endswith("/MLmodel") for child in client.list_artifacts(run_id, item.path)):
            return f"runs:/{run_id}/{item.path}"
    return None


def signature_sample(values: dict[str, Any]) -> Any | None:
    if not values["signature-data"]:
        return None
    import numpy as np

    from mlcicd.data import iter_batches, resolve_files

    for _, batch in iter_batches(resolve_files(values["signature-data"], option="signature-data")):
        frame = batch.slice(0, 64).to_pandas()
        if values["target"] in frame.columns:
            frame = frame.drop(columns=[values["target"]])
        numeric = frame.select_dtypes("number")
        if numeric.shape[1] != frame.shape[1]:
            github.warning(
                f"signature-data has non-numeric columns ({', '.join(c for c in frame.columns if c not in numeric.columns)}); they are left out of the input example."
            )
        return numeric.to_numpy(dtype=np.float32)
    return None


def log_handed_over_model(model_dir: Path, run_id: str, values: dict[str, Any]) -> str | None:
    """Log `model.pt` (TorchScript or pickled nn.Module) or an MLflow model directory from MLCICD_MODEL_DIR."""
    import mlflow

    if (model_dir / "MLmodel").is_file():
        with mlflow.start_run(run_id=run_id):
            mlflow.log_artifacts(str(model_dir), "model")
        return f"runs:/{run_id}/model"
    weights = model_dir / "model.pt"
    if not weights.is_file():
        return None
    try:
        import torch
    except ImportError:
        raise UsageError(
            "torch not available",
            "the command wrote model.pt, but torch is not importable by the toolkit's Python; set `extras: torch` on the setup action or use a runner Python with torch.",
        ) from None
    try:
        module = torch.jit.load(str(weights), map_location="cpu")
    except Exception:  # noqa: BLE001 - not TorchScript: try a pickled module next
        try:
            module = torch.load(str(weights), map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001
            raise UsageError(
                "model.pt unreadable",
                f"{weights}: {type(exc).__name__}: {exc}. A model pickled with torch.save(model) only loads where its class can be "
                "imported (not a class defined in the training script itself): save TorchScript instead "
                "(torch.jit.save(torch.jit.script(model), path)), or log the model in the run with mlflow.",
            ) from None
    if not isinstance(module, torch.nn.Module):
        raise UsageError(
            "model.pt is not a module",
            f"{weights} holds a {type(module).__name__}; save the nn.Module itself (torch.save(model, path)), not its state_dict.",
        )
    module.eval()
    example = signature_sample(values)
    kwargs: dict[str, Any] = {"name": "model", "pip_requirements": [f"torch=={torch.__version__.split('+')[0]}"]}
    if example is not None:
        kwargs["input_example"] = example
    if isinstance(module, torch.jit.ScriptModule):
        kwargs["serialization_format"] = "pickle"  # MLflow's pt2 export cannot take TorchScript
    elif example is None:
        kwargs["serialization_format"] = "pickle"  # pt2 (the default) needs an example to trace
        github.warning("no `signature-data`: the model is logged without a signature or input example.", title=f"{NAME}: no signature")
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(module, **kwargs)
    return info.model_uri


# --- run bookkeeping ------------------------------------------------------------------------


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(data) if isinstance(data, list) else str(data)}


def read_params(path: str) -> dict[str, str]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("params file not found", f"{path} does not exist. Fix `params`.", file=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError("params file unreadable", f"{path}{where}: {problem}. Fix the YAML (or JSON) of `params`.", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("params file unreadable", f"{path}: {exc}. It must be a UTF-8 YAML or JSON file.", file=path) from None
    return flatten(data) if isinstance(data, dict) else {}


def pip_freeze() -> str:
    python = shutil.which("python") or sys.executable
    try:
        out = subprocess.run([python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, timeout=120)
        return out.stdout if out.returncode == 0 else f"# pip freeze failed with {python}: {out.stderr.strip()[:500]}\n"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"# pip freeze failed: {exc}\n"


def run_name(values: dict[str, Any], sha: str) -> str:
    if values["run-name"]:
        return values["run-name"]
    return f"ci-{sha[:7]}" if sha else time.strftime("local-%Y%m%d-%H%M%S")


def reference_profile(values: dict[str, Any]) -> str:
    """The profile to store with the version: the option, else validate-data's `reference` in the same config file
    (the profile drift was measured against is the one monitor should keep measuring against)."""
    from mlcicd.config import section_of
    from mlcicd.profile import load_profile

    path = values["reference-profile"]
    if not path and values.get("config"):
        path = section_of(values, "validate-data").get("reference", "")
    if path:
        load_profile(path)  # a broken profile fails here, before a run exists
    return path


def record_environment(client: Any, run_id: str, gpus: dict[str, Any], values: dict[str, Any], files: list[str]) -> None:
    environment = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": gpus["torch"],
        "cuda": gpus["cuda"],
        "gpu": gpus,
        "mlcicd": __version__,
        "fingerprint_files": files,
    }
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "environment.json").write_text(json.dumps(environment, indent=2))
        (Path(tmp) / "requirements-frozen.txt").write_text(pip_freeze())
        client.log_artifacts(run_id, tmp, "mlcicd")
    if values["params"]:
        client.log_artifact(run_id, values["params"], "mlcicd")
    if values.get("config"):
        client.log_artifact(run_id, values["config"], "mlcicd")
    if values["reference-profile"]:
        with tempfile.TemporaryDirectory() as tmp:
            stored = Path(tmp) / Path(tracking.PROFILE_ARTIFACT).name
            shutil.copyfile(values["reference-profile"], stored)
            client.log_artifact(run_id, str(stored), str(Path(tracking.PROFILE_ARTIFACT).parent))


def log_params_after(client: Any, run_id: str, params: dict[str, str]) -> None:
    """The params file as run params, after training: keys the script logged itself are kept as they are."""
    from mlflow.entities import Param

    existing = client.get_run(run_id).data.params
    fresh = [Param(k[:250], v[:6000]) for k, v in params.items() if k[:250] not in existing]
    for start in range(0, len(fresh), 100):
        client.log_batch(run_id, params=fresh[start : start + 100])


def run(values: dict[str, Any]) -> int:
    from mlflow import MlflowClient

    if not values["command"]:
        raise UsageError("missing command", "`command` is required, e.g. `python train.py --params params.yaml`.")
    if not values["model-name"]:
        raise UsageError(
            "missing model-name", "`model-name` is required: the registered model this training produces, e.g. `churn-classifier`."
        )
    workdir = Path(values["working-directory"] or ".").resolve()
    if not workdir.is_dir():
        raise UsageError("working-directory not found", f"{workdir} is not a directory. Fix `working-directory`.")
    params = read_params(values["params"]) if values["params"] else {}
    values = {**values, "reference-profile": reference_profile(values)}

    gpus = detect_gpus()
    check_gpu(gpus, values["require-gpu"])
    device = device_label(gpus)
    procs = (gpus["count"] or 1) if values["nproc-per-node"] == "auto" else int(values["nproc-per-node"])
    argv = launch_argv(values["command"], procs)
    check_command(argv[0], workdir)
    check_report_path(values["report"])  # before a run exists and hours of training are spent
    data, data_files = data_fingerprint(training_data(values))
    fp, fp_files = fingerprint(values, workdir, data)
    fp_files += data_files

    uri = tracking.connect()
    context = tracking.git_context()
    outputs = {"fingerprint": fp, "device": device}

    if not values["retrain"]:
        found = find_trained_version(values["model-name"], fp)
        if found is not None:
            model_uri = f"models:/{values['model-name']}/{found.version}"
            report = {
                "stage": NAME,
                "skipped": True,
                "fingerprint": fp,
                "device": device,
                "model_uri": model_uri,
                "run_id": found.run_id,
                "model_version": found.version,
            }
            finish(values, report, {**outputs, "skipped": "true", "run-id": found.run_id or "", "model-uri": model_uri})
            return PASSED

    client = MlflowClient()
    exp_id = tracking.experiment_id(values["experiment"] or values["model-name"])
    tags = {
        tracking.TAG_FINGERPRINT: fp,
        tracking.TAG_DATA_DIGEST: values["data-digest"] or data,
        tracking.TAG_MODEL_NAME: values["model-name"],
        tracking.TAG_GIT_SHA: context["sha"],
        tracking.TAG_GIT_REF: context["ref"],
        tracking.TAG_WORKFLOW_RUN: context["run_url"],
        "mlcicd.device": device,
        "mlcicd.command": values["command"],
        "mlcicd.nproc_per_node": str(procs),
        "mlflow.source.git.commit": context["sha"],
        "mlflow.user": context["actor"],
    }
    created = client.create_run(exp_id, run_name=run_name(values, context["sha"]), tags={k: v for k, v in tags.items() if v})
    run_id = created.info.run_id
    job = Job(values, workdir, gpus, device, argv, fp, fp_files, params, uri, exp_id, run_id)
    try:
        return train_in_run(job, client, outputs)
    except BaseException as exc:
        # a usage error, a cancel or a bug after the run exists: the run must not stay RUNNING forever
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise


@dataclass(frozen=True)
class Job:
    """Everything decided before the command starts."""

    values: dict[str, Any]
    workdir: Path
    gpus: dict[str, Any]
    device: str
    argv: list[str]
    fingerprint: str
    fingerprint_files: list[str]
    params: dict[str, str]
    tracking_uri: str
    experiment_id: str
    run_id: str


def train_in_run(job: Job, client: Any, outputs: dict[str, str]) -> int:
    values, workdir, gpus, device, argv = job.values, job.workdir, job.gpus, job.device, job.argv
    fp, params, uri, exp_id, run_id = job.fingerprint, job.params, job.tracking_uri, job.experiment_id, job.run_id
    record_environment(client, run_id, gpus, values, job.fingerprint_files)

    with tempfile.TemporaryDirectory(prefix="mlcicd-model-", dir=os.environ.get("RUNNER_TEMP") or None) as model_dir:
        env = {
            **os.environ,
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_EXPERIMENT_ID": exp_id,
            "MLCICD_MODEL_DIR": model_dir,
            "MLCICD_DEVICE": "cuda" if gpus["count"] else "cpu",
            "PYTHONUNBUFFERED": "1",
        }
        training = Training(argv, workdir, env, values["timeout-minutes"] * 60)
        print(f"::group::{NAME}: {shlex.join(argv)}" if github.in_actions() else f"$ {shlex.join(argv)}", flush=True)
        started = time.monotonic()
        try:
            code = training.run()
        finally:
            if github.in_actions():
                print("::endgroup::", flush=True)
        wall = time.monotonic() - started
        client.log_metric(run_id, "mlcicd.wall_time_s", wall)
        client.set_tag(run_id, "mlcicd.exit_code", str(code))
        log_params_after(client, run_id, params)
        base = {
            "stage": NAME,
            "skipped": False,
            "run_id": run_id,
            "fingerprint": fp,
            "device": device,
            "wall_time_s": wall,
            "exit_code": code,
            "command": shlex.join(argv),
        }
        if training.timed_out or training.cancelled or code != 0:
            why = (
                f"timed out after {values['timeout-minutes']:g} min; the process tree was killed"
                if training.timed_out
                else "cancelled; the process tree was killed"
                if training.cancelled
                else exit_reason(code)
            )
            client.set_terminated(run_id, "KILLED" if training.cancelled else "FAILED")
            finish(
                values,
                {**base, "failed": why, "log_tail": list(training.tail)},
                {**outputs, "skipped": "false", "run-id": run_id, "model-uri": ""},
            )
            github.error(
                f"the training command {why} (MLflow run {run_id} marked {'KILLED' if training.cancelled else 'FAILED'}). The last lines of its output are in the step summary.",
                title=f"{NAME}: training failed",
            )
            return CHECK_FAILED

        model_uri = logged_model_uri(run_id, exp_id) or log_handed_over_model(Path(model_dir), run_id, values)
    if model_uri is None:
        client.set_terminated(run_id, "FAILED")
        finish(values, {**base, "failed": "no model"}, {**outputs, "skipped": "false", "run-id": run_id, "model-uri": ""})
        github.error(
            "the command finished but produced no model. Either log it in the run (e.g. `mlflow.pytorch.log_model(model, name='model', "
            "input_example=x)` — MLFLOW_RUN_ID is set, so `mlflow.start_run()` joins the run) or write it to `$MLCICD_MODEL_DIR/model.pt` "
            "(torch.save(model, path) or TorchScript) or an MLflow model directory to `$MLCICD_MODEL_DIR`.",
            title=f"{NAME}: no model",
        )
        return CHECK_FAILED
    client.set_tag(run_id, "mlcicd.model_uri", model_uri)
    client.set_terminated(run_id, "FINISHED")
    finish(values, {**base, "model_uri": model_uri}, {**outputs, "skipped": "false", "run-id": run_id, "model-uri": model_uri})
    return PASSED


def finish(values: dict[str, Any], report: dict[str, Any], outputs: dict[str, str]) -> None:
    report = {**report, "version": __version__, "tracking_uri": tracking.redact(os.environ.get("MLFLOW_TRACKING_URI", ""))}
    path = write_json(values["report"], report)
    github.set_outputs({**outputs, "model-name": values["model-name"], "report": path})
    github.write_summary(render_summary(report))


def render_summary(report: dict[str, Any]) -> str:
    if report.get("skipped"):
        head = "## train-gpu: ⏭️ skipped (same fingerprint already registered)"
    elif report.get("failed"):
        head = f"## train-gpu: ❌ {report['failed']}"
    else:
        head = "## train-gpu: ✅ trained"
    rows = [
        ("device", report.get("device")),
        ("run", report.get("run_id")),
        ("model", report.get("model_uri") or "–"),
        ("fingerprint", f"`{report['fingerprint'][:19]}…`"),
        ("wall time", f"{report['wall_time_s']:.1f} s" if "wall_time_s" in report else "–"),
        ("tracking", report.get("tracking_uri")),
    ]
    lines = [head, "", markdown_table(["", ""], rows), ""]
    if report.get("log_tail"):
        lines += [
            f"<details open><summary>last {len(report['log_tail'])} lines of output</summary>",
            "",
            "```text",
            *report["log_tail"],
            "```",
            "</details>",
            "",
        ]
    return "\n".join(lines)


STAGE = Stage(
    NAME,
    "run the training command inside a tracked MLflow run (GPU when present) and hand over its model",
    OPTIONS,
    run,
    outputs=(
        ("run-id", "MLflow run id of the training (or of the reused version when skipped)"),
        ("model-uri", "the trained model, e.g. `models:/m-…` (or `models:/<name>/<version>` when skipped)"),
        ("skipped", "`true` when a registered version had the same fingerprint and training was skipped"),
        ("fingerprint", "`sha256:…` of the fingerprint files, params, command and data digest"),
        ("model-name", "the registered model name, for the next jobs (check-gates, promote)"),
        ("device", "where it trained, e.g. `cuda:NVIDIA H100 80GB HBM3 x1` or `cpu`"),
        ("report", "path of the JSON report"),
    ),
)
