"""KServe: an InferenceService (`serving.kserve.io/v1beta1`, serverless mode) is both the deploy
target and the router of a rollout.

- Deploy (canary): `spec.predictor.model.storageUri` becomes the registry version's artifact location
  (`modelFormat` from `router.format` when given) with `canaryTrafficPercent: 0`, and the new revision
  must become ready (`status.components.predictor.latestReadyRevision` = `latestCreatedRevision`).
- Traffic: `canaryTrafficPercent` is the canary's share; KServe splits between the latest revision and
  the last one rolled out with 100 %. It is read back from `status.components.predictor.traffic`
  once `status.observedGeneration` has caught up with the change.
- Promotion (the handoff): after the 100 % step, `canaryTrafficPercent` is removed, so the new revision
  is KServe's `latestRolledoutRevision`: the stable one of the next rollout.
- Rollback: `canaryTrafficPercent: 0` pins all traffic to the previous rolled-out revision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlcicd.deploying import Deployer
from mlcicd.kube import Patch, Resource, conditions, generation, wait_until
from mlcicd.kube_routers import STATUS_WAIT, KubeRouter
from mlcicd.router_base import RouterError, RouterRefused, Weights

INFERENCESERVICE = Resource("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
CANARY = "canaryTrafficPercent"


def predictor_status(document: dict[str, Any]) -> dict[str, Any]:
    found = document.get("status", {}).get("components", {}).get("predictor")
    return found if isinstance(found, dict) else {}


def latest_percent(document: dict[str, Any]) -> tuple[float, bool]:
    """(percent of traffic on the latest revision, whether another revision is in the split)."""
    latest, others = 0.0, False
    for target in predictor_status(document).get("traffic") or []:
        if target.get("latestRevision"):
            latest += float(target.get("percent") or 0)
        else:
            others = True
    return latest, others


class KServeRouter(KubeRouter):
    kind = "kserve"
    resource = INFERENCESERVICE
    supports_shadow = False
    deploys = True

    def __init__(self, spec: Any, stable: str, canary: str, timeout: float) -> None:
        super().__init__(spec, stable, canary, timeout)
        self.format = str(spec.get("format") or "")

    def check(self, document: dict[str, Any]) -> None:
        if not isinstance(document.get("spec", {}).get("predictor", {}).get("model"), dict):
            raise RouterRefused(
                f"{self.describe()} has no `spec.predictor.model`; use KServe's model spec (modelFormat + "
                "storageUri), "
                "see docs/actions/canary-shift.md"
            )

    def pairs(self, document: dict[str, Any]) -> list[tuple[int, int, int]]:
        return []

    def weights_of(self, document: dict[str, Any]) -> Weights:
        """No `canaryTrafficPercent`: the latest revision is the rolled-out (stable) one. With it, the latest
        revision's share, unless KServe had no other revision to split with (the first one)."""
        predictor = document.get("spec", {}).get("predictor", {})
        if CANARY not in predictor:
            return Weights(0)
        latest, others = latest_percent(document)
        wanted = float(predictor[CANARY] or 0)
        if not others and wanted < 100:
            return Weights(0)
        return Weights(latest)

    def read(self) -> Weights:
        document = self.object.get()
        self.check(document)
        return self.weights_of(document)

    def settled(self, document: dict[str, Any], wanted: int) -> str | None:
        observed = int(document.get("status", {}).get("observedGeneration") or 0)
        if observed < wanted:
            return f"KServe has reconciled generation {observed}, not {wanted}"
        predictor = document.get("spec", {}).get("predictor", {})
        if CANARY in predictor:
            latest, others = latest_percent(document)
            if (others or float(predictor[CANARY] or 0) >= 100) and abs(
                latest - float(predictor[CANARY] or 0)
            ) > 1e-6:
                return f"the latest revision has {latest:g} % of traffic, not {predictor[CANARY]} %"
        return None

    def _write(self, weights: Weights) -> None:
        if weights.shadow:
            raise RouterError("KServe cannot mirror traffic")

        def change(document: dict[str, Any]) -> Patch | None:
            # Canary 0 with no new revision: no canaryTrafficPercent at all (KServe would have nothing to
            # split).
            status, predictor = predictor_status(document), document["spec"]["predictor"]
            nothing_new = status.get("latestReadyRevision") == status.get("latestRolledoutRevision")
            value = None if not weights.canary and nothing_new else round(weights.canary)
            if predictor.get(CANARY) == value and (value is not None or CANARY not in predictor):
                return None
            return {"spec": {"predictor": {CANARY: value}}}

        self.wait_settled(self.object.update(change))

    def deployer(self, name: str, version: str, timeout: float) -> Deployer:
        return KServeDeployer("", name, version, timeout, router=self)


@dataclass(frozen=True)
class KServeDeployer(Deployer):
    """The version onto the InferenceService as a new revision (canary), or promoted (stable)."""

    router: KServeRouter = field(kw_only=True)

    def storage_uri(self) -> str:
        from mlflow import MlflowClient

        return str(MlflowClient().get_model_version_download_uri(self.name, self.version))

    def run(self, target: str) -> str | None:
        print(f"[canary-shift] KServe: {self.model_uri} → {target} ({self.router.describe()})", flush=True)
        try:
            return self._canary() if target == "canary" else self._promote()
        except RouterError as exc:
            return f"KServe {target} deploy of {self.model_uri}: {exc}"

    def _canary(self) -> str | None:
        uri = self.storage_uri()
        before = self.router.object.get()
        rolled_out = predictor_status(before).get("latestRolledoutRevision")
        if before["spec"]["predictor"]["model"].get("storageUri") == uri:
            if predictor_status(before).get("latestReadyRevision") != rolled_out:
                return (
                    None  # a rollout of this version that was rolled back: its revision is the canary again
                )
            return (
                f"{self.router.describe()} already serves storageUri {uri} as its rolled-out revision: "
                "nothing to roll out"
            )
        model: dict[str, Any] = {"storageUri": uri}
        if self.router.format:
            model["modelFormat"] = {"name": self.router.format}
        written = self.router.object.update(lambda _: {"spec": {"predictor": {CANARY: 0, "model": model}}})
        wanted = generation(written)

        def ready() -> str | None:
            document = self.router.object.get()
            status = predictor_status(document)
            if int(document.get("status", {}).get("observedGeneration") or 0) < wanted:
                return "KServe has not reconciled the change"
            failed = conditions(document.get("status")).get("PredictorReady")
            created = status.get("latestCreatedRevision")
            if created == rolled_out:
                return "no new revision was created yet"
            if (
                failed is not None
                and failed.get("status") == "False"
                and status.get("latestReadyRevision") != created
            ):
                raise RouterError(
                    f"revision {created} failed: {failed.get('reason', '')} "
                    f"{failed.get('message', '')}".strip()
                )
            if status.get("latestReadyRevision") != created:
                return f"revision {created} is not ready"
            return None

        wait_until(ready, self.timeout, f"{self.router.describe()}")
        revision = predictor_status(self.router.object.get()).get("latestReadyRevision")
        print(f"[canary-shift] KServe: revision {revision} serves {uri} at canary 0 %", flush=True)
        return None

    def _promote(self) -> str | None:
        """The canary has 100 %: drop canaryTrafficPercent so KServe rolls the latest revision out."""
        written = self.router.object.update(lambda _: {"spec": {"predictor": {CANARY: None}}})
        wanted = generation(written)

        def rolled_out() -> str | None:
            document = self.router.object.get()
            status = predictor_status(document)
            if int(document.get("status", {}).get("observedGeneration") or 0) < wanted:
                return "KServe has not reconciled the promotion"
            if status.get("latestRolledoutRevision") != status.get("latestReadyRevision"):
                return f"revision {status.get('latestReadyRevision')} is not rolled out"
            return None

        wait_until(rolled_out, max(STATUS_WAIT, self.timeout), self.router.describe())
        return None
