"""A published figure bundle: one archive with the figures (PNG, PDF), the tables (CSV,
Markdown), the metrics, the marl-eval JSON, the report page, params.yaml, claims.yaml, dvc.lock,
the lock of installed packages and a manifest with a SHA-256 per file.

    python -m pipeline.report.bundle build bundles/marl-repro.tar.gz   # (make bundle)
    python -m pipeline.report.bundle verify bundles/marl-repro.tar.gz  # or the unpacked marl-repro/

The archive unpacks into one folder named as the archive (``marl-repro/`` for
``marl-repro.tar.gz``) and keeps the repository's layout inside it, so the report page finds its
figures. It is built only from a workspace whose outputs are those of its params and code: a
stage that DVC reports changed (a parameter or code file since the last build, a hand-edited
figure) refuses the build; outputs that are only absent (a clone has no run outputs) do not. It is
not a DVC stage: it records the git commit it was built from (``provenance.json`` and the
page's commit line), which a DVC output must not (pipeline/outputs/provenance.py). The manifest is in
``sha256sum`` format: ``sha256sum -c MANIFEST.sha256`` checks an unpacked bundle too. The same
files give the same archive bytes (sorted members, fixed times and owners).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import io
import json
import os
import re
import sys
import tarfile
from pathlib import Path

from pipeline.outputs import layout
from pipeline.outputs.provenance import git_commit

MANIFEST = "MANIFEST.sha256"
PAGE = (layout.REPORT / "index.html").as_posix()
FIXED = ["params.yaml", "claims.yaml", "dvc.lock", "requirements.lock", "results/metrics.json",
         layout.MARL_EVAL.as_posix(), *((layout.REPORT / n).as_posix() for n in layout.REPORT_FILES)]  # fmt: skip
GLOBS = [(layout.FIGURES, ("*.png", "*.pdf")), (layout.TABLES, ("*.csv", "*.md")), (layout.SNAPSHOT_DATA, ("*.csv",))]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def installed_packages() -> str:
    """Every installed distribution, ``name==version``, sorted: the environment that ran."""
    found = {(d.metadata["Name"] or "").lower(): d.version for d in importlib.metadata.distributions()}
    return "".join(f"{name}=={version}\n" for name, version in sorted(found.items()) if name)


def contents(root: Path = Path(".")) -> dict[str, bytes]:
    """Path in the bundle -> bytes, or SystemExit naming the first missing file."""
    files = list(FIXED)
    for folder, patterns in GLOBS:
        files += sorted({p.as_posix() for pattern in patterns for p in (root / folder).rglob(pattern)})
    out = {}
    for name in files:
        path = root / name
        if not path.is_file():
            raise SystemExit(f"bundle: {name} is missing; run `dvc repro` first")
        out[Path(name).as_posix()] = path.read_bytes()
    commit = git_commit()
    stamp = f'<span id="git-commit">{commit}</span>'
    out[PAGE] = re.sub(rb'<span id="git-commit">.*?</span>', stamp.encode(), out[PAGE], count=1, flags=re.S)
    out["installed-packages.txt"] = installed_packages().encode()
    out["provenance.json"] = (json.dumps({"git_commit": commit}, indent=2) + "\n").encode()
    return out


def manifest(files: dict[str, bytes]) -> bytes:
    return "".join(f"{sha256(data)}  {name}\n" for name, data in sorted(files.items())).encode()


def _changes(entry) -> list[str]:
    """The leaf words of one `dvc status` entry ("modified", "deleted", "changed command")."""
    if isinstance(entry, str):
        return [entry]
    values = entry.values() if isinstance(entry, dict) else entry
    return [word for value in values for word in _changes(value)]


def stale_stages(root: Path = Path(".")) -> list[str]:
    """Stages whose recorded inputs or outputs differ from the workspace's, ignoring outputs and
    inputs that are only absent (a clone holds no run outputs: README, "What a clone holds")."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        status = repo.status()
    return sorted(name for name, entries in status.items() if set(_changes(entries)) - {"deleted", "not in cache"})


def build(destination: Path, root: Path = Path("."), refuse_stale: bool = True) -> dict[str, bytes]:
    """Write the archive atomically; refuse a path that exists and (``refuse_stale``) a stale
    workspace."""
    if destination.exists():
        raise SystemExit(f"bundle: {destination} exists already; remove it or choose another path")
    if not destination.name.endswith(".tar.gz"):
        raise SystemExit(f"bundle: {destination}: the bundle is a .tar.gz archive")
    stale = stale_stages(root) if refuse_stale else []
    if stale:
        more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
        raise SystemExit(f"bundle: the outputs are not those of params.yaml and the code (dvc status: "
                         f"{', '.join(stale[:3])}{more} changed); run `make repro` first")  # fmt: skip
    files = contents(root)
    files[MANIFEST] = manifest(files)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        top = destination.name.removesuffix(".tar.gz")
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".{destination.name}.tmp")
    try:
        tmp.write_bytes(gzip.compress(archive.getvalue(), mtime=0))
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
    return files


def read_bundle(path: Path) -> dict[str, bytes]:
    """An archive's or an unpacked folder's files."""
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    try:
        with tarfile.open(path, "r:gz") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except (OSError, tarfile.TarError, EOFError) as err:
        raise SystemExit(f"bundle: {path} cannot be read as a .tar.gz archive ({err})") from None
    tops = {name.split("/", 1)[0] for name in files}
    if len(tops) == 1 and all("/" in name for name in files):  # the folder it unpacks into
        files = {name.split("/", 1)[1]: data for name, data in files.items()}
    return files


def problems(files: dict[str, bytes]) -> list[str]:
    """Every file whose bytes differ from the manifest, is missing, or is not listed."""
    if MANIFEST not in files:
        return [f"{MANIFEST} is missing"]
    listed = {}
    for line in files[MANIFEST].decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    found = []
    for name, digest in listed.items():
        if name not in files:
            found.append(f"{name}: missing")
        elif sha256(files[name]) != digest:
            found.append(f"{name}: SHA-256 differs from {MANIFEST}")
    found += [f"{name}: not in {MANIFEST}" for name in files if name not in listed and name != MANIFEST]
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build or verify a figure bundle.")
    parser.add_argument("command", choices=("build", "verify"))
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "build":
        files = build(args.path)
        print(f"bundle: wrote {args.path} ({len(files)} files, {args.path.stat().st_size:,} bytes)")
        return
    if not args.path.exists():
        raise SystemExit(f"bundle: {args.path} does not exist")
    found = problems(read_bundle(args.path))
    for problem in found:
        print(f"bundle: {args.path}: {problem}", file=sys.stderr)
    if found:
        raise SystemExit(1)
    print(f"bundle: {args.path} verified against {MANIFEST}")


if __name__ == "__main__":
    main()
