"""What every router is: it sets the canary's share of traffic, reads it back, and retries a router that
does not answer. The router types themselves live in mlcicd.routers (HAProxy, http) and
mlcicd.kube_routers / mlcicd.kserve (Kubernetes), which all build on this module."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlcicd.deploying import Deployer

RETRY_DELAYS = (0.5, 1.0, 2.0)
"""Pauses between attempts: four tries within about 3.5 s plus timeouts, short enough that a
cancelled job (about 7 s between SIGINT and SIGKILL on GitHub) still restores stable."""


class RouterError(Exception):
    """The router did not answer, refused the change, or reads back something else."""


class RouterRefused(RouterError):
    """A refusal that retrying cannot change (no permission, no such object, a route without both
    backends): never retried, and before traffic moves it is a usage error."""


@dataclass(frozen=True)
class Weights:
    """The canary's share of traffic in percent (stable gets the rest), and the mirrored share."""

    canary: float
    shadow: float = 0.0

    def describe(self) -> str:
        return f"canary {self.canary:g} %" + (
            f", {self.shadow:g} % mirrored to canary" if self.shadow else ""
        )


class Router:
    kind = ""
    supports_shadow = False

    def __init__(self, stable: str, canary: str, timeout: float) -> None:
        self.stable, self.canary, self.timeout = stable, canary, timeout

    def describe(self) -> str:
        raise NotImplementedError

    def read(self) -> Weights:
        raise NotImplementedError

    def _write(self, weights: Weights) -> None:
        raise NotImplementedError

    def unhealthy(self, server: str) -> str | None:
        """Why the router would not send `server` traffic now (down, in maintenance); None when it
        would, or when the router does not know (then the deploy command's exit status is the check)."""
        return None

    deploys = False
    """True for a router that also puts the version on its servers (kserve): no deploy-command then."""

    def preflight(self) -> None:
        """Before anything changes: raise RouterRefused where a write would be refused (permissions)."""

    def deployer(self, name: str, version: str, timeout: float) -> Deployer:
        """With `deploys`: what puts `version` on the canary, then promotes it (lifecycle.make_deployer)."""
        raise NotImplementedError

    def _retry(self, action: str, call: Callable[[], Weights], attempts: int) -> Weights:
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                return call()
            except RouterRefused:
                raise
            except RouterError as exc:
                last = exc
            if attempt < attempts - 1:
                time.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
        raise RouterError(f"{action} failed after {attempts} attempts: {last}")

    def get(self, attempts: int = len(RETRY_DELAYS) + 1) -> Weights:
        return self._retry(f"reading the weights from {self.describe()}", self.read, attempts)

    def set(self, weights: Weights, attempts: int = len(RETRY_DELAYS) + 1) -> Weights:
        """Set and read back; RouterError unless the router reports exactly these weights."""

        def attempt() -> Weights:
            self._write(weights)
            now = self.read()
            if abs(now.canary - weights.canary) > 1e-6 or abs(now.shadow - weights.shadow) > 1e-6:
                raise RouterError(f"asked for {weights.describe()}, but it reads back {now.describe()}")
            return now

        return self._retry(f"setting {weights.describe()} on {self.describe()}", attempt, attempts)
