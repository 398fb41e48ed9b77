"""A stand-in for a Kubernetes API server and its kubelets, because no cluster can run on these
machines. It keeps Jobs in memory and "runs" each pod by executing the images' entry point
(`python -m jobs`) with the container's args as a local process, with exactly the environment
the Job spec gives it (plus the data of Secrets it references), one index after another for
Indexed Jobs. So tests check that the Jobs our code builds carry everything their stage needs,
using the real stage code, generator and store."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import ROOT


class FakeBatchApi:
    def __init__(self, secrets: dict[str, dict[str, str]] | None = None, fail: set[str] | None = None) -> None:
        self.secrets = secrets or {}
        self.fail = fail or set()  # components whose pods fail, to test failure handling
        self.jobs: dict[str, client.V1Job] = {}
        self.created: list[str] = []
        self.deleted: list[str] = []

    def create_namespaced_job(self, namespace: str, body: client.V1Job) -> client.V1Job:
        name = body.metadata.name
        if name in self.jobs:
            raise ApiException(status=409, reason="AlreadyExists")
        assert body.metadata.namespace == namespace
        self.jobs[name] = body
        self.created.append(name)
        self._run(body)
        return body

    def read_namespaced_job(self, name: str, namespace: str) -> client.V1Job:
        if name not in self.jobs:
            raise ApiException(status=404, reason="NotFound")
        return self.jobs[name]

    read_namespaced_job_status = read_namespaced_job

    def delete_namespaced_job(self, name: str, namespace: str, propagation_policy: str) -> None:
        assert propagation_policy in ("Background", "Foreground"), "orphaned pods would keep running"
        if name not in self.jobs:
            raise ApiException(status=404, reason="NotFound")
        del self.jobs[name]
        self.deleted.append(name)

    def _environment(self, container: client.V1Container) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONUNBUFFERED": "1"}
        for source in container.env_from or []:
            ref = source.secret_ref
            if ref is not None:
                if ref.name not in self.secrets and not ref.optional:
                    raise AssertionError(f"pod references missing Secret {ref.name}")
                env.update(self.secrets.get(ref.name, {}))
        for var in container.env or []:
            env[var.name] = var.value
        return env

    def _run(self, job: client.V1Job) -> None:
        container = job.spec.template.spec.containers[0]
        component = job.metadata.labels["app.kubernetes.io/component"]
        env = self._environment(container)
        args = [sys.executable, "-m", "jobs", *container.args]  # the images' ENTRYPOINT
        indexed = job.spec.completion_mode == "Indexed"
        succeeded = failed = 0
        for index in range(job.spec.completions or 1):
            pod_env = {**env, "JOB_COMPLETION_INDEX": str(index)} if indexed else env
            ok = component not in self.fail and subprocess.run(args, env=pod_env, cwd=ROOT, check=False).returncode == 0
            succeeded, failed = succeeded + ok, failed + (not ok)
        condition: dict[str, Any] = (
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}
            if failed
            else {"type": "Complete", "status": "True"}
        )
        job.status = client.V1JobStatus(succeeded=succeeded, failed=failed, active=0, conditions=[client.V1JobCondition(**condition)])
