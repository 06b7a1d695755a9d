"""The reference deployment as a team starts it: `bash deploy/run.sh 2` (haproxy from Debian, a local PostgreSQL
cluster, two real `assistant serve` replicas on the shipped models): both replicas serve, a thread holds every turn
whichever replica answered it, a replica killed with SIGKILL costs no request and is started again, and stopping the
command stops everything."""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import uuid
from pathlib import Path
from typing import IO

import httpx

from tests.waiting import until

ROOT = Path(__file__).resolve().parents[2]


def _free_block(size: int) -> int:
    """A port whose next ``size`` ports are free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size > 65000:
            continue
        free = True
        for offset in range(1, size):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", base + offset))
                except OSError:
                    free = False
                    break
        if free:
            return base
    raise AssertionError("no free block of ports")


def _serving(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _replicas(stats_port: int, column: str) -> dict[str, str]:
    """One column of haproxy's statistics (CSV) for each replica."""
    text = httpx.get(f"http://127.0.0.1:{stats_port}/;csv", timeout=5).text.lstrip("# ")
    return {row["svname"]: row[column] for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "replicas" and row["svname"].startswith("replica")}


def _sessions(stats_port: int) -> dict[str, int]:
    """Requests haproxy sent to each replica."""
    return {name: int(count) for name, count in _replicas(stats_port, "stot").items()}


def _replica_pid(port: int) -> int:
    found = subprocess.run(["pgrep", "-f", f"assistant serve --port {port}$"], capture_output=True, text=True)
    pids = [int(pid) for pid in found.stdout.split()]
    assert len(pids) == 1, found.stdout
    return pids[0]


def _deploy(tmp_path: Path, ports: int, **settings: str) -> tuple[int, int, subprocess.Popen[bytes], IO[str]]:
    """`bash deploy/run.sh 2` on a free block of ``ports`` ports, a local PostgreSQL cluster and ``settings`` as
    environment: (haproxy's port, its statistics port, the command, its log)."""
    port = _free_block(ports)
    stats = _free_block(1)
    env = dict(os.environ, DEPLOY_PORT=str(port), DEPLOY_STATS_PORT=str(stats), DEPLOY_DIR=str(tmp_path), **settings)
    env.pop("ASSISTANT_STORAGE__URL", None)
    log = (tmp_path / "run.log").open("w")
    command = subprocess.Popen(["bash", "deploy/run.sh", "2"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    return port, stats, command, log


def test_the_reference_deployment_serves_survives_a_killed_replica_and_stops(tmp_path: Path) -> None:
    port, stats, command, log = _deploy(tmp_path, 5, ASSISTANT_SERVER__PRELOAD_LARGE="false")
    url = f"http://127.0.0.1:{port}"
    thread = f"deployed-{uuid.uuid4().hex[:12]}"  # the local cluster outlives the command: earlier runs' threads stay
    try:
        until(lambda: "the deployment is ready" in (tmp_path / "run.log").read_text(), 300,
              "never ready: " + str(tmp_path), every=0.5)
        until(lambda: _serving(port + 1) and _serving(port + 2), 300, "a replica never started", every=0.5)
        # haproxy sends requests to a replica once two health checks in a row passed, a second or two after it serves
        until(lambda: set(_replicas(stats, "status").values()) == {"UP"}, 60, "haproxy never saw both replicas up",
              every=0.5)
        questions = [f"What is {number} * 7?" for number in range(6)]
        for question in questions:
            response = httpx.post(url + "/v1/chat/completions", timeout=120, json={
                "model": "assistant", "thread_id": thread, "messages": [{"role": "user", "content": question}]})
            assert response.status_code == 200, response.text
        served = _sessions(stats)
        assert served["replica1"] > 0 and served["replica2"] > 0, served
        thread = httpx.get(f"{url}/v1/threads/{thread}", timeout=30).json()
        assert [message["content"] for message in thread["messages"]][::2] == questions
        # SIGKILL one replica: the next requests still succeed, and the command starts it again
        os.kill(_replica_pid(port + 1), signal.SIGKILL)
        for number in range(4):
            response = httpx.post(url + "/v1/chat/completions", timeout=120, json={
                "model": "assistant", "messages": [{"role": "user", "content": f"What is {number} + 40?"}]})
            assert response.status_code == 200, response.text
        until(lambda: _serving(port + 1), 300, "the killed replica was not started again", every=0.5)
        assert "replica 1 exited; starting it again" in (tmp_path / "run.log").read_text()
    finally:
        command.terminate()  # the command alone: it stops what it started
        try:
            command.wait(timeout=60)
        finally:
            log.close()
            stopped = not any(_serving(port + offset) for offset in range(3))
            if not stopped:
                os.killpg(command.pid, signal.SIGKILL)
    assert stopped, "a replica or the balancer outlived the command"


def _tokens_predicted(port: int) -> float:
    """The tokens a llama-server has generated so far (its Prometheus counter)."""
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith("llamacpp:tokens_predicted_total "):
            return float(line.split()[1])
    raise AssertionError("no tokens_predicted_total in llama-server's metrics")


def _llama_servers() -> dict[int, int]:
    """Each running llama-server's port, with its parent's process id."""
    found = subprocess.run(["pgrep", "-a", "-f", "llama-server --model"], capture_output=True, text=True)
    servers = {}
    for line in found.stdout.splitlines():
        pid, *command = line.split()
        if "--port" in command:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            servers[int(command[command.index("--port") + 1])] = parent
    return servers


def test_replicas_share_one_pair_of_tier_servers(tmp_path: Path) -> None:
    """`DEPLOY_TIERS=shared bash deploy/run.sh 2`: one llama-server per tier, started by one `assistant models serve`,
    answers both replicas (neither holds a model), and stopping the command stops it too."""
    port, _, command, log = _deploy(tmp_path, 6, DEPLOY_TIERS="shared")
    small_port, large_port = port + 4, port + 5
    try:
        until(lambda: "the deployment is ready" in (tmp_path / "run.log").read_text(), 600,
              "never ready: " + str(tmp_path), every=0.5)
        assert "2 replicas, shared tiers" in (tmp_path / "run.log").read_text()
        servers = _llama_servers()
        tier_parents = {servers.get(small_port), servers.get(large_port)}
        assert len(tier_parents) == 1 and None not in tier_parents, servers
        replica_pids = {_replica_pid(port + 1), _replica_pid(port + 2)}
        assert not replica_pids & set(servers.values()), "a replica runs its own tier server"
        for replica in (port + 1, port + 2):  # each replica, asked directly, is answered by the shared small tier
            before = _tokens_predicted(small_port)
            response = httpx.post(f"http://127.0.0.1:{replica}/v1/chat/completions", timeout=180, json={
                "model": "small", "max_tokens": 8,
                "messages": [{"role": "user", "content": "Say hello in French."}]})
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"].strip()
            assert _tokens_predicted(small_port) > before
    finally:
        command.terminate()
        try:
            command.wait(timeout=60)
        finally:
            log.close()
            left = {tier for tier in (small_port, large_port) if tier in _llama_servers()}
            if left or any(_serving(port + offset) for offset in range(3)):
                os.killpg(command.pid, signal.SIGKILL)
    assert not left, "a shared tier server outlived the command"
