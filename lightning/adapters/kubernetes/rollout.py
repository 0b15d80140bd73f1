"""KubernetesRollout: point an agent's Deployment at a model, the way ``kubectl`` does — and undo it.

Built by ``Container.rollout`` (``KubernetesRollout.connect``); used by the promotion service.
``roll_out`` does what the workshop does by hand::

    kubectl set env deployment/<agent> -n <ns> USE_TUNED_MODEL=true TUNED_MODEL_NAME=<deployment>
    kubectl rollout restart deployment/<agent> -n <ns>
    kubectl rollout status deployment/<agent> -n <ns>

as one strategic-merge patch of the agent container's ``env`` (merged by name; ``None`` removes a
variable, like ``kubectl set env NAME-``) plus the ``kubectl.kubernetes.io/restartedAt`` pod-template
annotation, then waits with ``kubectl rollout status``'s rules (observedGeneration caught up, all
replicas updated and available, no ``ProgressDeadlineExceeded``). When anything fails after the
patch — the rollout never becomes available or runs out of time, the status cannot be read, a
conflict, a 403, a dropped connection — it patches the previous env and annotation back, retrying with
backoff within what is left of the time budget — the pod template is then identical to the previous
revision, so its ReplicaSet simply scales back up — and reports ``rolled_back``, or, when even that
fails, the env it last read back (``observed_env``; ``None`` when unknown) so the caller can tell the
registry and the cluster apart. Failures that prove nothing was changed (the first read, a patch the
API refused outright) raise instead. See ``lightning.ports.rollout`` for the guarantees.

Cluster access, first match wins: ``K8S_API_SERVER`` (an explicit URL; the tests' stand-in),
a kubeconfig (``KUBECONFIG``, else ``~/.kube/config``), in-cluster service account. With
``K8S_USE_AKS_TOKEN=true`` requests carry an Entra ID token for the AKS AAD server application
(scope ``6dae42f8-4368-4678-94ff-3960e28e3630/.default``) from ``DefaultAzureCredential``, refreshed
before it expires. With no cluster configured at all ``connect`` returns a ``LocalRollout``:
the local agent follows the model registry's active version, so there is nothing to patch.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError

from lightning.domain.errors import (
    ConfigurationError,
    Conflict,
    LightningError,
    NotFound,
    ProviderError,
    TransientProviderError,
)
from lightning.ports.rollout import AgentRollout, RolloutResult

logger = logging.getLogger(__name__)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
AKS_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
MODEL_ENV = ("USE_TUNED_MODEL", "TUNED_MODEL_NAME")
_TOKEN_SLACK_SECONDS = 300
RESTORE_SHARE = 0.25
"""The part of a rollout's time budget kept for putting the previous env back if the new one fails."""
RETRY_CAP_SECONDS = 10.0


class LocalRollout:
    """No cluster: the local agent reads the registry's active version itself; nothing to restart.

    So the agent always serves what the registry says: ``observed_env`` is the env asked for, and a
    rollout can neither fail nor diverge. There is no env to read: ``current_env`` and ``previous_env``
    name the model variables as unset. Nothing is patched, so results say ``applied=False``."""

    message = (
        "no Kubernetes cluster configured (K8S_API_SERVER, KUBECONFIG or in-cluster): nothing to patch; "
        "the local agent follows the model registry's active version"
    )

    def current_env(self, *, namespace: str, deployment: str) -> dict[str, str | None]:
        del namespace, deployment
        return dict.fromkeys(MODEL_ENV)

    def roll_out(self, *, namespace: str, deployment: str, env: dict[str, str | None]) -> RolloutResult:
        del namespace, deployment
        return RolloutResult(
            ok=True,
            message=self.message,
            previous_env=dict.fromkeys(env),
            observed_env=dict(env),
            applied=False,
        )


def _aks_token_hook(credential: Any) -> Callable[[k8s.Configuration], None]:
    token: Any = None

    def refresh(configuration: k8s.Configuration) -> None:
        nonlocal token
        if token is None or token.expires_on - _TOKEN_SLACK_SECONDS < time.time():
            token = credential.get_token(AKS_SCOPE)
        # The client sends a bearer token only when api_key has one: "BearerToken" is the key it reads first.
        configuration.api_key["BearerToken"] = token.token
        configuration.api_key_prefix["BearerToken"] = "Bearer"

    return refresh


def _ca_file(data: str) -> str:
    """Write a base64 PEM CA bundle to a private temp file (the client takes a path)."""
    try:
        pem = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "K8S_CA_CERT_DATA must be base64 PEM (kubeconfig's certificate-authority-data)"
        ) from None
    if b"BEGIN CERTIFICATE" not in pem:
        raise ConfigurationError("K8S_CA_CERT_DATA does not hold a PEM certificate")
    with tempfile.NamedTemporaryFile("wb", prefix="k8s-ca-", suffix=".pem", delete=False) as handle:
        handle.write(pem)
    return handle.name


class _WriteFailed(Exception):
    """A PATCH that did not go through; ``maybe_applied`` when an attempt's answer was lost (it may have)."""

    def __init__(self, error: LightningError, *, maybe_applied: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.maybe_applied = maybe_applied


class KubernetesRollout:
    """The AgentRollout port on the apps/v1 Deployments API (official ``kubernetes`` client).

    ``timeout`` is the budget of one ``roll_out``: waiting for the new pods may use up to
    ``1 - RESTORE_SHARE`` of it, and restoring the previous env gets at least the rest. ``sleep`` and
    ``monotonic`` are injectable, so tests move time instead of waiting for it.
    """

    def __init__(
        self,
        *,
        api_client: k8s.ApiClient,
        timeout: float = 600.0,
        poll_interval: float = 2.0,
        conflict_retries: int = 5,
        request_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = k8s.AppsV1Api(api_client)
        self.host = api_client.configuration.host
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.conflict_retries = conflict_retries
        self.request_timeout = request_timeout
        self._sleep = sleep
        self._monotonic = monotonic

    @classmethod
    def connect(
        cls,
        *,
        api_server: str | None = None,
        ca_cert_data: str | None = None,
        kubeconfig: Path | None = None,
        use_aks_token: bool = False,
        timeout: float = 600.0,
        credential: Any = None,
        poll_interval: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> AgentRollout:
        """The first cluster found — ``api_server`` (with ``ca_cert_data``, base64 PEM), ``kubeconfig``
        (default ``~/.kube/config``), in-cluster — or a ``LocalRollout`` when there is none."""
        configuration = k8s.Configuration()
        kubeconfig = kubeconfig or Path(os.path.expanduser("~/.kube/config"))
        if api_server:
            configuration.host = api_server.rstrip("/")
            if ca_cert_data:
                # AKS serves its API with the cluster's own CA, which no public bundle holds.
                configuration.ssl_ca_cert = _ca_file(ca_cert_data)
        elif kubeconfig.is_file():
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), client_configuration=configuration
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            return LocalRollout()
        if use_aks_token:
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            hook = _aks_token_hook(credential)
            hook(configuration)  # a first token now: a credential problem shows before any patch
            configuration.refresh_api_key_hook = hook  # type: ignore[assignment]
        return cls(
            api_client=k8s.ApiClient(configuration),
            timeout=timeout,
            poll_interval=poll_interval,
            sleep=sleep,
            monotonic=monotonic,
        )

    # --- port -----------------------------------------------------------------------------------
    def current_env(self, *, namespace: str, deployment: str) -> dict[str, str | None]:
        return _model_env(self._read(namespace, deployment, until=None), deployment, MODEL_ENV)

    def roll_out(self, *, namespace: str, deployment: str, env: dict[str, str | None]) -> RolloutResult:
        target = f"{namespace}/{deployment}"
        started = self._monotonic()
        deadline = started + self.timeout
        wait_until = started + self.timeout * (1 - RESTORE_SHARE)
        current = self._read(namespace, deployment, until=deadline)  # raises: nothing changed yet
        names = list(env)
        container = _container(current, deployment).name
        previous_env = _model_env(current, deployment, names)
        template_metadata = current.spec.template.metadata
        previous_restart = ((template_metadata and template_metadata.annotations) or {}).get(RESTARTED_AT)

        restarted_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        observed: dict[str, str | None] | None
        try:
            applied = self._write(
                namespace,
                deployment,
                _patch_body(container, env, restarted_at),
                until=wait_until,
                attempts=self.conflict_retries,
            )
        except _WriteFailed as failure:
            if not failure.maybe_applied:
                raise failure.error from None  # refused outright: the Deployment is unchanged
            detail = f"the patch may or may not have been applied ({failure.error})"
            observed = None
        else:
            observed = _model_env(applied, deployment, names)
            done, detail, seen = self._wait(namespace, deployment, until=wait_until)
            if seen is not None:
                observed = _model_env(seen, deployment, names)
            if done:
                logger.info("rolled out %s", target, extra={"model_version": env.get("TUNED_MODEL_NAME")})
                return RolloutResult(
                    ok=True,
                    message=f"deployment {target} rolled out: {detail}",
                    previous_env=previous_env,
                    observed_env=observed,
                )

        logger.warning("rollout of %s failed (%s); restoring the previous env", target, detail)
        return self._restore(
            namespace,
            deployment,
            body=_patch_body(container, previous_env, previous_restart),
            previous_env=previous_env,
            observed=observed,
            detail=detail,
            until=deadline,
        )

    def _restore(
        self,
        namespace: str,
        deployment: str,
        *,
        body: dict[str, Any],
        previous_env: dict[str, str | None],
        observed: dict[str, str | None] | None,
        detail: str,
        until: float,
    ) -> RolloutResult:
        """Patch the previous env and annotation back, retrying until ``until``; report where it ended."""
        target = f"{namespace}/{deployment}"
        names = list(previous_env)
        failed = f"rollout of {target} failed: {detail}"
        try:
            restored = self._write(namespace, deployment, body, until=until, attempts=None)
        except _WriteFailed as failure:
            if failure.maybe_applied:
                observed = None  # a restore whose answer was lost may have landed: only a read can tell
            try:  # one last look, so the report says what the Deployment runs, not what we hoped
                observed = _model_env(self._read(namespace, deployment, until=until), deployment, names)
            except LightningError:
                pass
            if observed == previous_env:
                return RolloutResult(
                    ok=False,
                    message=f"{failed}; the previous env is back (read back after the restore: {failure.error})",
                    previous_env=previous_env,
                    rolled_back=True,
                    observed_env=observed,
                )
            now = "unknown (the API did not answer)" if observed is None else _describe(observed)
            logger.error(
                "rollout of %s failed and the previous env could not be restored; the Deployment's env is %s",
                target,
                now,
                extra={"observed_env": observed, "previous_env": previous_env},
            )
            return RolloutResult(
                ok=False,
                message=f"{failed}; restoring the previous env FAILED ({failure.error}); the Deployment's "
                f"env is {now}",
                previous_env=previous_env,
                rolled_back=False,
                observed_env=observed,
            )
        observed = _model_env(restored, deployment, names)
        done, restore_detail, seen = self._wait(namespace, deployment, until=until)
        if seen is not None:
            observed = _model_env(seen, deployment, names)
        tail = (
            "previous env restored" if done else f"previous env restored, not yet available: {restore_detail}"
        )
        return RolloutResult(
            ok=False,
            message=f"{failed}; {tail}",
            previous_env=previous_env,
            rolled_back=observed == previous_env,
            observed_env=observed,
        )

    # --- API calls --------------------------------------------------------------------------------
    def _request_timeout(self, until: float | None) -> float:
        if until is None:
            return self.request_timeout
        return max(1.0, min(self.request_timeout, until - self._monotonic()))

    def _read(self, namespace: str, deployment: str, *, until: float | None) -> Any:
        try:
            return self.api.read_namespaced_deployment(
                deployment, namespace, _request_timeout=self._request_timeout(until)
            )
        except ApiException as exc:
            raise self._error(exc, "get", namespace, deployment) from None
        except Urllib3Error as exc:
            raise self._unreachable(exc) from None

    def _write(
        self, namespace: str, deployment: str, body: dict[str, Any], *, until: float, attempts: int | None
    ) -> Any:
        """PATCH ``body``, retrying conflicts and transient failures (with backoff) until ``until`` or
        ``attempts``; returns the Deployment the API answered with.

        Re-sending is safe: the patch sets fixed values (the restart annotation too), so a second copy of a
        patch that did land changes nothing."""
        maybe_applied = False
        delay = min(self.poll_interval, 0.5)
        attempt = 0
        while True:
            attempt += 1
            try:
                # A dict body goes out as application/strategic-merge-patch+json: what kubectl set env sends.
                return self.api.patch_namespaced_deployment(
                    deployment, namespace, body, _request_timeout=self._request_timeout(until)
                )
            except ApiException as exc:
                error: LightningError = self._error(exc, "patch", namespace, deployment)
                uncertain = exc.status == 0 or exc.status >= 500  # a gateway may have passed it on
                retry = uncertain or exc.status in (409, 429)
            except Urllib3Error as exc:
                error = self._unreachable(exc)
                uncertain = not _never_sent(exc)
                retry = isinstance(error, TransientProviderError)
            maybe_applied = maybe_applied or uncertain
            out_of_attempts = attempts is not None and attempt >= attempts
            if not retry or out_of_attempts or self._monotonic() + delay > until:
                raise _WriteFailed(error, maybe_applied=maybe_applied)
            logger.info(
                "patching %s/%s failed (attempt %d: %s); retrying in %.1fs",
                namespace,
                deployment,
                attempt,
                error,
                delay,
            )
            self._sleep(delay)
            delay = min(delay * 2, RETRY_CAP_SECONDS)

    def _wait(self, namespace: str, deployment: str, *, until: float) -> tuple[bool, str, Any | None]:
        """``kubectl rollout status`` until ``until``: (done, what happened, the last Deployment read).

        A read that fails transiently (the API briefly unavailable, a dropped connection) is retried; one
        that waiting cannot fix (403, 404) ends the wait."""
        budget = max(until - self._monotonic(), 0.0)
        detail = "waiting for the rollout to start"
        seen: Any | None = None
        delay = min(0.05, self.poll_interval)  # look again soon, then back off to poll_interval
        while True:
            try:
                current = self._read(namespace, deployment, until=until)
            except TransientProviderError as exc:
                detail = f"rollout status unavailable: {exc}"
            except LightningError as exc:
                return False, f"cannot read the rollout status: {exc}", seen
            else:
                seen = current
                done, failed, detail = _progress(current)
                if done:
                    return True, detail, seen
                if failed:
                    return False, detail, seen
            remaining = until - self._monotonic()
            if remaining <= 0:
                return False, f"not complete after {budget:g}s ({detail})", seen
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, self.poll_interval)

    # --- errors -----------------------------------------------------------------------------------
    def _error(self, exc: ApiException, verb: str, namespace: str, deployment: str) -> LightningError:
        reason = _status_message(exc)
        target = f"{namespace}/{deployment}"
        if exc.status == 403:
            return ProviderError(
                f"Kubernetes refused to {verb} deployment {target} (403 Forbidden: {reason}); grant the loop's "
                f"identity get and patch on deployments.apps in namespace {namespace} (Role + RoleBinding), "
                "or set ROLLOUT_ENABLED=false",
                provider="kubernetes",
                status_code=403,
            )
        if exc.status == 401:
            return ProviderError(
                f"Kubernetes rejected the credentials for {self.host} (401 Unauthorized: {reason}); check "
                "KUBECONFIG or K8S_USE_AKS_TOKEN",
                provider="kubernetes",
                status_code=401,
            )
        if exc.status == 404:
            return NotFound(
                "Kubernetes deployment", target, hint=f"check with `kubectl get deployment -n {namespace}`"
            )
        if exc.status == 409:
            return Conflict(
                f"deployment {target} kept changing while patching it ({reason}); try again", ident=target
            )
        if exc.status in (429, 500, 502, 503, 504) or exc.status == 0:
            return TransientProviderError(
                f"Kubernetes API {self.host} answered {exc.status} to {verb} {target}: {reason}; retry later",
                provider="kubernetes",
                status_code=exc.status,
            )
        return ProviderError(
            f"Kubernetes refused to {verb} deployment {target} ({exc.status}: {reason})",
            provider="kubernetes",
            status_code=exc.status,
        )

    def _unreachable(self, exc: Exception) -> ProviderError:
        if isinstance(getattr(exc, "reason", None), Urllib3SSLError):
            # Not transient: retrying will not make an untrusted certificate trusted.
            return ProviderError(
                f"TLS verification of the Kubernetes API at {self.host} failed ({exc.reason}); set "  # type: ignore[attr-defined]
                "K8S_CA_CERT_DATA to the cluster CA (kubeconfig's certificate-authority-data) or use a kubeconfig",
                provider="kubernetes",
            )
        return TransientProviderError(
            f"cannot reach the Kubernetes API at {self.host} ({type(exc).__name__}); check K8S_API_SERVER, "
            "KUBECONFIG or the cluster's network",
            provider="kubernetes",
        )


def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        return str(exc.reason or exc.status)
    return str(body.get("message") or exc.reason or exc.status)


def _container(deployment: Any, name: str) -> Any:
    """The agent container: the one named like the Deployment, else the first."""
    containers = deployment.spec.template.spec.containers
    return next((c for c in containers if c.name == name), containers[0])


def _env_of(container: Any) -> dict[str, str | None]:
    return {item.name: item.value for item in container.env or []}


def _model_env(deployment: Any, name: str, names: Iterable[str]) -> dict[str, str | None]:
    """``names`` as the agent container of ``deployment`` has them (None when unset)."""
    env = _env_of(_container(deployment, name))
    return {key: env.get(key) for key in names}


def _describe(env: dict[str, str | None]) -> str:
    return ", ".join(f"{key}={value}" if value is not None else f"{key} unset" for key, value in env.items())


def _never_sent(exc: Exception) -> bool:
    """The request never reached the server (no connection, TLS refused): it cannot have been applied."""
    reason = getattr(exc, "reason", None) or exc
    return isinstance(reason, ConnectTimeoutError | Urllib3SSLError)


def _patch_body(container: str, env: dict[str, str | None], restarted_at: str | None) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {"name": name, "$patch": "delete"} if value is None else {"name": name, "value": value}
        for name, value in env.items()
    ]
    return {
        "spec": {
            "template": {
                # None deletes the annotation, so a restore returns the template to its previous revision.
                "metadata": {"annotations": {RESTARTED_AT: restarted_at}},
                "spec": {"containers": [{"name": container, "env": entries}]},
            }
        }
    }


def _progress(deployment: Any) -> tuple[bool, bool, str]:
    """(done, failed, detail) by ``kubectl rollout status``'s rules for Deployments."""
    status = deployment.status
    generation = deployment.metadata.generation or 0
    wanted = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    if status is None or (status.observed_generation or 0) < generation:
        return False, False, "waiting for the deployment spec update to be observed"
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return False, True, f"progress deadline exceeded ({condition.message or 'no message'})"
    updated = status.updated_replicas or 0
    total = status.replicas or 0
    available = status.available_replicas or 0
    if updated < wanted:
        return False, False, f"{updated} of {wanted} new replicas updated"
    if total > updated:
        return False, False, f"{total - updated} old replicas pending termination"
    if available < updated:
        return False, False, f"{available} of {updated} updated replicas available"
    return True, False, f"{available} of {wanted} replicas available"
