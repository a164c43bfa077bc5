"""The migration as a real Ray job: a private local cluster, the job submission client,
2,000 legacy sessions, then the validation.

The cluster gets its own temp dir, ports and auth token (RAY_AUTH_MODE=token: with a token file
in ~/.ray the dashboard demands a token, see docs/migration.md). ``ray stop`` would stop every
Ray process on the machine (it takes no address or temp dir in ray 2.60), so the teardown
signals only the processes this cluster started: the ``ray start --block`` process group, then
any process whose command line names the cluster's temp dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests
from ray.job_submission import JobStatus, JobSubmissionClient

from tests.integration.test_migration import generate, migrate, validate

REPO = Path(__file__).resolve().parents[2]
SESSIONS = 2000
UPLOAD_EXCLUDES = [
    ".git",
    ".venv",
    "var",
    "docs",
    "tests",
    "*.db",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "__pycache__",
]


@dataclass(frozen=True)
class Cluster:
    dashboard_url: str
    token: str
    temp_dir: str


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _kill_cluster(head: subprocess.Popen[bytes], temp_dir: str) -> None:
    """Only our cluster's processes: its process group, then anything naming its temp dir."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)
    head.wait()
    for _ in range(50):
        ours = []
        for process in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(temp_dir in part for part in process.info["cmdline"] or ()):
                    ours.append(process)
        if not ours:
            return
        for process in ours:
            with contextlib.suppress(psutil.Error):
                process.kill()
        time.sleep(0.2)
    raise AssertionError(f"processes of the test cluster survived: {[p.pid for p in ours]}")


@pytest.fixture
def ray_cluster() -> Iterator[Cluster]:
    temp_dir = tempfile.mkdtemp(prefix="rmig")  # short: Ray's unix socket paths are bounded
    token = secrets.token_hex(32)
    (
        gcs,
        dashboard,
        node_manager,
        object_manager,
        client,
        agent_listen,
        agent_grpc,
        metrics,
        runtime_env,
    ) = _free_ports(9)
    worker_base = 20000 + secrets.randbelow(400) * 100
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    head = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            "--block",
            f"--temp-dir={temp_dir}",
            f"--port={gcs}",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            f"--node-manager-port={node_manager}",
            f"--object-manager-port={object_manager}",
            f"--ray-client-server-port={client}",
            f"--dashboard-agent-listen-port={agent_listen}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--metrics-export-port={metrics}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--min-worker-port={worker_base}",
            f"--max-worker-port={worker_base + 99}",
            "--num-cpus=2",
            "--include-dashboard=true",
            "--disable-usage-stats",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    cluster = Cluster(f"http://127.0.0.1:{dashboard}", token, temp_dir)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert head.poll() is None, "ray start --head exited"
            with contextlib.suppress(requests.RequestException):
                headers = {"Authorization": f"Bearer {token}"}
                if requests.get(
                    f"{cluster.dashboard_url}/api/version", headers=headers, timeout=2
                ).ok:
                    break
            assert time.monotonic() < deadline, "the dashboard never came up"
            time.sleep(0.5)
        yield cluster
    finally:
        _kill_cluster(head, temp_dir)


@pytest.mark.timeout(180)
def test_2000_sessions_migrate_as_a_ray_job_and_validate(
    ray_cluster: Cluster, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    generate(url, sessions=SESSIONS, malformed=3)
    client = JobSubmissionClient(
        ray_cluster.dashboard_url, headers={"Authorization": f"Bearer {ray_cluster.token}"}
    )
    job = client.submit_job(
        entrypoint=f"{sys.executable} -m scripts.migrate_sessions --url {url} --ray "
        "--batch-users 20 --max-in-flight 4",
        runtime_env={"working_dir": str(REPO), "excludes": UPLOAD_EXCLUDES},
    )
    deadline = time.monotonic() + 120
    while (status := client.get_job_status(job)) not in {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.STOPPED,
    }:
        assert time.monotonic() < deadline, client.get_job_logs(job)
        time.sleep(0.5)
    logs = client.get_job_logs(job)
    assert status is JobStatus.SUCCEEDED, logs
    assert '"event": "progress"' in logs  # structured lines in a job, not a progress bar
    ray_line = next(json.loads(line) for line in logs.splitlines() if '"event": "ray"' in line)
    assert ray_line["tasks"] > 1
    assert f"{SESSIONS + 3} sessions: {SESSIONS} migrated, 3 skipped" in logs

    code, report = validate(url)
    assert code == 0, report
    assert migrate(url)["events_appended"] == 0
