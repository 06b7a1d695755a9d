"""Tier servers' supervision with a stand-in for llama-server (tests/fake_llama_server.py, a real process on a real
port): started until healthy, reached through the OpenAI-compatible backend with token probabilities, restarted when
killed or hung, stopped on close, and gone when their parent is killed. The real llama-server is exercised in
tests/integration/test_llama_server_real.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from models.errors import ModelError
from models.llama_server import TierServer, TierServers, find_binary, free_port, server_command
from models.openai_backend import OpenAICompatibleModel
from models.settings import ModelSpec
from tests.waiting import until

FAKE = Path(__file__).resolve().parents[1] / "fake_llama_server.py"


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "llama-server"
    path.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    path.chmod(0o755)
    return path


def _server(binary: Path, tmp_path: Path, alias: str = "small") -> TierServer:
    port = free_port()
    command = server_command(binary, tmp_path / "model.gguf", alias=alias, port=port, slots=4, n_ctx=2048,
                             threads=2, batch=512)
    return TierServer(alias, command, port, tmp_path / f"{alias}.log")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return status != "Z"


def test_the_command_line_is_loopback_parallel_slots_and_no_web_page(tmp_path: Path) -> None:
    command = server_command(Path("/bin/llama-server"), Path("/m.gguf"), alias="large", port=8123, slots=4,
                             n_ctx=4096, threads=2, batch=512)
    text = " ".join(command)
    assert "--host 127.0.0.1 --port 8123" in text and "--parallel 4" in text and "--ctx-size 16384" in text
    assert "--alias large" in text and "--no-webui" in text and "--model /m.gguf" in text
    assert "--no-cache-prompt" not in command


def test_without_prompt_reuse_a_slot_evaluates_every_prompt_whole() -> None:
    command = server_command(Path("/bin/llama-server"), Path("/m.gguf"), alias="large", port=8123, slots=1,
                             n_ctx=4096, threads=2, batch=512, reuse_prompts=False)
    assert "--no-cache-prompt" in command and "--parallel 1" in " ".join(command)


def test_a_missing_binary_says_how_to_build_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty build cache
    with pytest.raises(ModelError, match=r"build_llama_server\.sh"):
        find_binary(None)
    with pytest.raises(ModelError, match=r"llama\.server_binary"):
        find_binary(tmp_path / "nope")


def test_servers_start_answer_with_probabilities_restart_and_stop(binary: Path, tmp_path: Path) -> None:
    small, large = _server(binary, tmp_path, "small"), _server(binary, tmp_path, "large")
    restarted: list[str] = []
    servers = TierServers({"small": small, "large": large}, check_interval_s=0.2,
                          on_restart=lambda server: restarted.append(server.alias))
    servers.start()
    try:
        assert small.healthy() and large.healthy()
        specs = servers.endpoint_specs({"small": ModelSpec(source="shipped:x", price_per_million_tokens=0.05),
                                        "large": ModelSpec(source="shipped:y")}, {"small": 630, "large": 1777})
        assert specs["small"].source == small.url and specs["small"].remote_model == "small"
        assert (specs["small"].parameters, specs["small"].price_per_million_tokens) == (630, 0.05)
        model = OpenAICompatibleModel(specs["large"].source, name="large", remote_model="large", parameters=1777)
        completion = model.chat([{"role": "user", "content": "Capital of France?"}], max_tokens=4)
        assert completion.text == "Paris." and completion.token_probabilities == pytest.approx([0.905, 0.905],
                                                                                               abs=1e-3)
        # killed: started again and healthy, on the same port
        assert small.process is not None
        first = small.process.pid
        os.kill(first, signal.SIGKILL)
        until(lambda: small.restarts == 1 and small.healthy(), 10, "the killed server was not restarted")
        assert restarted == ["small"] and small.process is not None and small.process.pid != first
        assert large.restarts == 0
    finally:
        servers.close()
    assert small.process is None and large.process is None
    until(lambda: not small.healthy() and not large.healthy(), 5, "a server outlived close()")


def test_a_hung_server_is_restarted(binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_UNHEALTHY_AFTER", "1.0")
    server = _server(binary, tmp_path)
    servers = TierServers({"small": server}, check_interval_s=0.2, failures=2)
    servers.start()
    try:
        until(lambda: server.restarts >= 1, 10, "a server failing /health was not restarted")
    finally:
        servers.close()


def test_a_server_that_cannot_start_is_a_clear_error_and_nothing_is_left(tmp_path: Path) -> None:
    broken = tmp_path / "llama-server"
    broken.write_text("#!/bin/sh\necho 'error: failed to load model' >&2\nexit 1\n")
    broken.chmod(0o755)
    server = _server(broken, tmp_path)
    with pytest.raises(ModelError, match="failed to load model"):
        TierServers({"small": server}).start()
    assert server.process is None


def test_the_servers_die_with_their_parent(binary: Path, tmp_path: Path) -> None:
    """A parent killed with SIGKILL runs no clean-up: the kernel's parent-death signal stops its servers."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from models.llama_server import TierServer, TierServers, free_port, server_command
        port = free_port()
        command = server_command(Path({str(binary)!r}), Path("m.gguf"), alias="small", port=port, slots=1,
                                 n_ctx=512, threads=1, batch=64)
        server = TierServer("small", command, port, Path({str(tmp_path)!r}) / "s.log")
        TierServers({{"small": server}}).start()
        print(server.process.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.kill()
    parent.wait(timeout=10)
    until(lambda: not _alive(child_pid), 10, "the server outlived its killed parent")


def test_models_serve_runs_the_tiers_until_interrupted(binary: Path, tmp_path: Path) -> None:
    """`assistant models serve` from the command line: each local tier (a GGUF file here) served and reachable as
    an endpoint, an endpoint tier left alone, everything stopped on Ctrl-C."""
    from tests.gguf_factory import write_gguf

    weights = tmp_path / "small.gguf"
    write_gguf(weights, {"w": (4, 4)}, {"general.architecture": "llama", "tokenizer.chat_template": "{{ x }}"})
    env = dict(os.environ, ASSISTANT_CACHE_DIR=str(tmp_path / "cache"), ASSISTANT_LLAMA__SERVER_BINARY=str(binary),
               ASSISTANT_MODELS__SMALL__SOURCE=str(weights))
    # Ctrl-C as a terminal sends it: a shell's background job (how a CI runner may start pytest) inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt; the command is given the default back
    command = subprocess.Popen([str(Path(sys.executable).with_name("assistant")), "models", "serve", "small"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert command.stdout is not None
        line = command.stdout.readline()
        assert line.startswith("small: http://127.0.0.1:") and "(model 'small')" in line, line
        url = line.split()[1]
        model = OpenAICompatibleModel(url, name="small", remote_model="small", parameters=16)
        assert model.chat([{"role": "user", "content": "hi"}], max_tokens=2).text == "Paris."
    finally:
        command.send_signal(signal.SIGINT)
        try:
            _, errors = command.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            command.kill()  # never leave it (and its tier server) running
            raise
    assert command.returncode == 0, errors
    assert "stopping the tier servers" in errors
    with pytest.raises(Exception):  # noqa: B017, PT011 - any connection error: the server is gone
        OpenAICompatibleModel(url, name="small", remote_model="small", timeout_s=2).chat(
            [{"role": "user", "content": "hi"}], max_tokens=2)


def test_models_serve_on_fixed_ports_tells_other_processes_its_endpoints(binary: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`models serve --port P --env-file F` (how deploy/run.sh shares one pair of tiers among its replicas): the tier
    listens on P, and F, once it answers, turns another process's small tier into that endpoint with the weights'
    parameter count and sha256 (cost and the eval cache read as in process) while its other tiers stay as they were;
    SIGTERM stops the tier server before the command exits."""
    import shlex

    from assistant.core.settings import Settings
    from tests.gguf_factory import write_gguf

    weights = tmp_path / "small.gguf"
    write_gguf(weights, {"w": (4, 4)}, {"general.architecture": "llama", "tokenizer.chat_template": "{{ x }}"})
    port, env_file = free_port(), tmp_path / "deploy" / "tiers.env"
    env_file.parent.mkdir()
    env = dict(os.environ, ASSISTANT_CACHE_DIR=str(tmp_path / "cache"), ASSISTANT_LLAMA__SERVER_BINARY=str(binary),
               ASSISTANT_MODELS__SMALL__SOURCE=str(weights))
    command = subprocess.Popen([str(Path(sys.executable).with_name("assistant")), "models", "serve", "small",
                                "--port", str(port), "--env-file", str(env_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert command.stdout is not None
        assert command.stdout.readline().startswith(f"small: http://127.0.0.1:{port}/v1 ")
        assert command.stdout.readline().strip() == f"the tiers' endpoints for other processes: {env_file}"
        [assignment] = shlex.split(env_file.read_text())
        name, value = assignment.split("=", 1)
        monkeypatch.setenv(name, value)
        other = Settings.load(None, {"cache_dir": str(tmp_path / "other")})
        small = other.model_spec("small")
        assert (small.source, small.remote_model, small.parameters) == (f"http://127.0.0.1:{port}/v1", "small", 16)
        assert small.sha256 and len(small.sha256) == 64
        assert other.model_spec("large").source == "shipped:qwen2.5-coder-1.5b-instruct-q4_k_m"
        reached = OpenAICompatibleModel(small.source, name="small", remote_model=small.remote_model, parameters=16)
        assert reached.chat([{"role": "user", "content": "hi"}], max_tokens=2).text == "Paris."
    finally:
        command.terminate()  # SIGTERM, as deploy/run.sh stops it: the tier servers are stopped before it exits
        try:
            _, errors = command.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            command.kill()
            raise
    assert command.returncode == 0 and "stopping the tier servers" in errors
    with pytest.raises(Exception):  # noqa: B017, PT011 - any connection error: the server is gone
        OpenAICompatibleModel(small.source, name="small", remote_model="small", timeout_s=2).chat(
            [{"role": "user", "content": "hi"}], max_tokens=2)


def test_an_evaluation_cache_follows_the_served_weights_not_the_port(tmp_path: Path) -> None:
    """Each start gives a tier server another port: the eval's record cache must key on the weights it serves."""
    from assistant.core.settings import Settings
    from eval.systems import model_fingerprint

    specs = {"small": ModelSpec(source="shipped:qwen2.5-coder-0.5b-instruct-q4_k_m")}
    fingerprints = []
    for port in (8101, 8202):
        server = TierServer("small", [], port, tmp_path / "log")
        served = TierServers({"small": server}).endpoint_specs(specs, {"small": 630}, {"small": "ab" * 32})
        settings = Settings.load(None, {"cache_dir": str(tmp_path)})
        settings.models = {**settings.models, **served}
        fingerprints.append(model_fingerprint(settings, "small"))
    assert fingerprints[0] == fingerprints[1] == {"alias": "small", "sha256": "ab" * 32, "engine": "endpoint"}
