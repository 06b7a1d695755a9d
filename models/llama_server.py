"""Local tiers on llama.cpp's own server (llama-server): continuous batching over parallel slots and a prompt cache,
one supervised process per tier on a loopback port, reached through the OpenAI-compatible backend (which asks for
token probabilities, so the escalation decision keeps its inputs).

The binary is built from the llama.cpp source that the pinned llama-cpp-python vendors (scripts/build_llama_server.sh)
into a build cache beside pip's, ``~/.cache/small-first-assistant-builds/llama-server/<version>/``; the weights are
the same verified GGUF files the in-process backend loads. A :class:`TierServers` starts one process per tier, waits
until each answers ``/health``, restarts one that exits or stops answering, and stops them all on close; each child
also gets SIGTERM from the kernel when the thread that started it dies (``PR_SET_PDEATHSIG``, through util-linux's
``setpriv``), so a killed parent leaves no server behind.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from common.files import sha256_file
from models.catalog import shipped_model
from models.errors import ModelError
from models.gguf import read_gguf_info
from models.registry import gguf_path
from models.settings import ModelsConfig, ModelSpec

BINARY = "llama-server"
BUILD_HINT = "build it once with `bash scripts/build_llama_server.sh` (about 10 minutes on 2 cores)"


def default_binary() -> Path:
    """Where scripts/build_llama_server.sh puts the server for the installed llama-cpp-python version (a build
    cache under ``$XDG_CACHE_HOME``, not the cache directory of weights and datasets)."""
    version = importlib.metadata.version("llama-cpp-python")
    builds = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "small-first-assistant-builds"
    return builds / "llama-server" / version / BINARY


def find_binary(configured: Path | None) -> Path:
    """The llama-server to run: the configured path, else the one built for this version; a clear error if none."""
    path = configured.expanduser() if configured is not None else default_binary()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ModelError(f"no llama-server at {path}", BUILD_HINT if configured is None else
                         "set llama.server_binary to an executable llama-server, or unset it and " + BUILD_HINT)
    return path


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dying_with_parent(command: list[str]) -> list[str]:
    """``command`` run through util-linux's setpriv, which asks the kernel to send it SIGTERM when the thread that
    started it dies (PR_SET_PDEATHSIG survives the exec; a preexec_fn would not be safe in a threaded server)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command


@dataclass
class TierServer:
    """One tier's llama-server: its command line, process and health."""

    alias: str
    command: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    _log_handle: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def spawn(self) -> None:
        """Start the process (its output appended to ``log``)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if self._log_handle is None:
            self._log_handle = self.log.open("ab")
        self.process = subprocess.Popen(_dying_with_parent(self.command), stdout=self._log_handle,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def healthy(self, timeout: float = 2.0) -> bool:
        """True when the process runs and ``/health`` answers 200 (503 while the model loads)."""
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float) -> None:
        """Block until healthy; ModelError (with the log's tail) when the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process is None or self.process.poll() is not None:
                raise ModelError(f"llama-server for tier {self.alias!r} exited: {self._tail()}",
                                 f"see {self.log}")
            if time.monotonic() > deadline:
                raise ModelError(f"llama-server for tier {self.alias!r} did not become healthy in {timeout:g} s",
                                 f"see {self.log}")
            time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=grace)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def _tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"


def server_command(binary: Path, model: Path, *, alias: str, port: int, slots: int, n_ctx: int,
                   threads: int, batch: int, reuse_prompts: bool = True, extra: list[str] | None = None) -> list[str]:
    """llama-server's command line for one tier: loopback only, ``slots`` parallel sequences of ``n_ctx`` tokens
    each (continuous batching is llama-server's default), no web UI, and flash attention off as llama-cpp-python
    has it in process (llama-server's "auto" turns it on for the CPU, and its numerics changed answers). Without
    ``reuse_prompts`` a slot evaluates every prompt whole instead of the part its cache does not hold (the in-process
    engine's ``llama.reuse_prompts``): with one slot, a prompt's token probabilities then no longer depend on what
    was asked before or alongside it."""
    return [str(binary), "--model", str(model), "--alias", alias, "--host", "127.0.0.1", "--port", str(port),
            "--parallel", str(slots), "--ctx-size", str(n_ctx * slots), "--threads", str(threads),
            "--batch-size", str(batch), "--flash-attn", "off", "--no-webui", "--metrics",
            *([] if reuse_prompts else ["--no-cache-prompt"]), *(extra or [])]


class TierServers:
    """Every local tier on its own supervised llama-server: started together, restarted when one exits or fails
    ``failures`` health checks in a row, stopped together."""

    def __init__(self, servers: Mapping[str, TierServer], *, check_interval_s: float = 2.0, failures: int = 3,
                 start_timeout_s: float = 300.0, on_restart: Callable[[TierServer], None] | None = None) -> None:
        self.servers = dict(servers)
        self.check_interval_s = check_interval_s
        self.failures = failures
        self.start_timeout_s = start_timeout_s
        self.on_restart = on_restart
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start every server, wait until all are healthy, then watch them."""
        try:
            for server in self.servers.values():
                server.spawn()
            for server in self.servers.values():
                server.wait_healthy(self.start_timeout_s)
        except BaseException:
            self.close()
            raise
        self._watcher = threading.Thread(target=self._watch, name="tier-servers", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        misses = dict.fromkeys(self.servers, 0)
        while not self._stop.wait(self.check_interval_s):
            for alias, server in self.servers.items():
                with self._lock:
                    if self._stop.is_set():
                        return
                    exited = server.process is None or server.process.poll() is not None
                    misses[alias] = 0 if not exited and server.healthy() else misses[alias] + 1
                    if exited or misses[alias] >= self.failures:
                        server.stop(grace=2.0)
                        server.restarts += 1
                        server.spawn()
                        misses[alias] = 0
                        if self.on_restart is not None:
                            self.on_restart(server)

    def close(self) -> None:
        """Stop watching and stop every server."""
        self._stop.set()
        with self._lock:
            for server in self.servers.values():
                server.stop()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=10)

    def endpoint_specs(self, specs: Mapping[str, ModelSpec], parameters: Mapping[str, int],
                       weights: Mapping[str, str] | None = None) -> dict[str, ModelSpec]:
        """Each served tier's spec as an OpenAI-compatible endpoint (prices and parameter counts kept, so cost and
        FLOPs read as with the in-process backend; ``sha256`` names the weights served, so an evaluation's cache
        follows the weights, not the port)."""
        return {alias: specs[alias].model_copy(update={
            "source": server.url, "remote_model": alias, "sha256": (weights or {}).get(alias),
            "parameters": specs[alias].parameters or parameters[alias]}) for alias, server in self.servers.items()}


@dataclass
class ServedTiers:
    """The tier servers, and what each one serves: parameter count and weights' sha256."""

    servers: TierServers
    parameters: dict[str, int]
    weights: dict[str, str]

    def endpoint_specs(self, specs: Mapping[str, ModelSpec]) -> dict[str, ModelSpec]:
        """Each served tier's spec as an endpoint (see :meth:`TierServers.endpoint_specs`)."""
        return self.servers.endpoint_specs(specs, self.parameters, self.weights)


def tier_servers(settings: ModelsConfig, aliases: list[str], log_dir: Path, *,
                 binary: Path | None = None, slots: int = 4, extra: list[str] | None = None,
                 progress: bool = True, first_port: int | None = None) -> ServedTiers:
    """Servers for the local tiers among ``aliases`` (endpoint tiers are left as they are), with each one's
    parameter count from its GGUF header and its weights' sha256 (shipped: the catalogue's; a user GGUF: its pinned
    one, else hashed now). Each listens on a free port, or, from ``first_port``, on consecutive ones in the order of
    ``aliases`` (fixed addresses other processes can be told once)."""
    executable = find_binary(binary)
    servers: dict[str, TierServer] = {}
    parameters: dict[str, int] = {}
    weights: dict[str, str] = {}
    for alias in aliases:
        spec = settings.model_spec(alias)
        if spec.kind == "openai":
            continue
        model = gguf_path(spec, settings, progress=progress)
        parameters[alias] = read_gguf_info(model).parameters
        weights[alias] = (shipped_model(spec.shipped_name).sha256 if spec.kind == "shipped"
                          else spec.sha256 or sha256_file(model))
        port = free_port() if first_port is None else first_port + len(servers)
        servers[alias] = TierServer(alias, server_command(
            executable, model, alias=alias, port=port, slots=slots, n_ctx=spec.n_ctx or settings.llama.n_ctx,
            threads=settings.llama.n_threads, batch=settings.llama.n_batch,
            reuse_prompts=settings.llama.reuse_prompts, extra=extra), port,
            log_dir / f"llama-server-{alias}.log")
    return ServedTiers(TierServers(servers), parameters, weights)


def describe(servers: TierServers) -> list[str]:
    """One line per served tier, for start-up messages."""
    return [f"tier {alias}: llama-server on {server.url} (pid {server.process.pid if server.process else '-'})"
            for alias, server in servers.servers.items()]

