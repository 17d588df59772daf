"""The published bundle: built from the repository's committed outputs, it verifies against its
manifest (archive and unpacked into one folder), the same files give the same bytes, one
flipped byte is named, and an existing path or a stale workspace is refused before anything is
written."""

from __future__ import annotations

import tarfile

import pytest

from pipeline.report import bundle


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "marl-repro.tar.gz"
    # from the committed outputs, whatever the workspace's code (the refusal of a stale workspace
    # is tested on the tiny pipeline: tests/test_pipeline_end_to_end.py)
    files = bundle.build(path, refuse_stale=False)
    return path, files


def test_the_bundle_holds_what_a_reader_needs(built):
    _, files = built
    for name in ("params.yaml", "claims.yaml", "dvc.lock", "requirements.lock", "installed-packages.txt",
                 "provenance.json", "results/metrics.json", "results/marl_eval.json", "results/report/index.html",
                 "results/report/claims.md", "figures/vm3ac/fig3.png", "figures/vm3ac/fig3.pdf",
                 "results/tables/table1.csv", "results/tables/table1.md", bundle.MANIFEST):  # fmt: skip
        assert name in files, name
    assert b'<span id="git-commit">' in files["results/report/index.html"]
    assert b"the commit that holds this page" not in files["results/report/index.html"]  # stamped
    assert b"torch==2.13.0" in files["installed-packages.txt"]


def test_the_bundle_verifies_archived_and_unpacked(built, tmp_path, capsys):
    path, _ = built
    bundle.main(["verify", str(path)])
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path, filter="data")
    assert [p.name for p in tmp_path.iterdir()] == ["marl-repro"]  # one folder, named as the archive
    bundle.main(["verify", str(tmp_path / "marl-repro")])
    assert capsys.readouterr().out.count("verified against MANIFEST.sha256") == 2


def test_one_flipped_byte_is_named(built, tmp_path, capsys):
    path, _ = built
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path, filter="data")
    tmp_path = tmp_path / "marl-repro"
    target = tmp_path / "results/tables/table1.csv"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(SystemExit) as err:
        bundle.main(["verify", str(tmp_path)])
    assert err.value.code == 1
    assert capsys.readouterr().err == f"bundle: {tmp_path}: results/tables/table1.csv: SHA-256 differs from MANIFEST.sha256\n"


def test_the_same_files_give_the_same_archive(built, tmp_path):
    path, _ = built
    again = tmp_path / path.name  # the same name: the folder inside is named after it
    bundle.build(again, refuse_stale=False)
    assert again.read_bytes() == path.read_bytes()


def test_an_existing_path_is_refused_in_one_line(built, tmp_path):
    path, _ = built
    before = path.read_bytes()
    with pytest.raises(SystemExit) as err:
        bundle.main(["build", str(path)])
    assert str(err.value) == f"bundle: {path} exists already; remove it or choose another path"
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
