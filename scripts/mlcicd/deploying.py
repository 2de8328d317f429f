"""What puts a model version on a server: the consumer's `deploy-command` (bash, with the model in its
environment), or a router that deploys the version itself (kserve)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Protocol


def model_env(tags: dict[str, str] | None) -> dict[str, str]:
    """What the deploy command learns of the version beyond its URI, so that it can deploy the serving code
    that matches the model (and a rollback the code that matched the old one): `MODEL_GIT_SHA`, the
    training commit (`mlcicd.git_sha`, empty when unknown), and `MODEL_TAGS`, every tag of the version
    as a JSON object."""
    from mlcicd import tracking

    tags = dict(tags or {})
    return {
        "MODEL_GIT_SHA": tags.get(tracking.TAG_GIT_SHA, ""),
        "MODEL_TAGS": json.dumps(tags, sort_keys=True),
    }


@dataclass(frozen=True)
class Deployer:
    """The consumer's `deploy-command`, run with bash, the model in its environment."""

    command: str
    name: str
    version: str
    timeout: float
    model: dict[str, str] = field(default_factory=dict)
    """More of the version's environment (model_env): MODEL_GIT_SHA, MODEL_TAGS."""

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def run(self, target: str) -> str | None:
        """Put the version on `target` (canary or stable); None on success, else why it failed."""
        env = {
            **os.environ,
            "MODEL_URI": self.model_uri,
            "MODEL_NAME": self.name,
            "MODEL_VERSION": self.version,
            "DEPLOY_TARGET": target,
            **self.model,
        }
        print(f"[canary-shift] deploy command: {self.model_uri} → {target} server", flush=True)
        started = time.monotonic()
        try:
            # The consumer's own command, from the environment, never pasted into a script.
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", self.command], env=env, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return (
                f"the deploy command for the {target} server did not finish within {self.timeout:g} s "
                "(`deploy-timeout`)"
            )
        except OSError as exc:
            return f"the deploy command could not start: {exc.strerror or exc}"
        if proc.returncode != 0:
            return (
                f"the deploy command for the {target} server exited with {proc.returncode} (its output is "
                "above)"
            )
        print(
            f"[canary-shift] {target} server: {self.model_uri} deployed in "
            f"{time.monotonic() - started:.1f} s",
            flush=True,
        )
        return None


class DeployingRouter(Protocol):
    """A router that may put the version on its servers itself (kserve)."""

    @property
    def deploys(self) -> bool: ...

    def deployer(self, name: str, version: str, timeout: float) -> Deployer: ...


def make_deployer(
    router: DeployingRouter, command: str, name: str, version: str, timeout: float, model: dict[str, str]
) -> Deployer | None:
    """What puts a version on a server: the router itself where it deploys (kserve), else `deploy-command`
    (with `model`: the version's commit and tags, model_env)."""
    if router.deploys:
        return router.deployer(name, version, timeout)
    return Deployer(command, name, version, timeout, model) if command else None
