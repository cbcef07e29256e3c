"""The dbt manifest Dagster builds its asset graph from: prepared on demand, keyed by the project's content.

``dagster dev`` is not the only way the definitions are loaded: tests, CI, ``dagster asset materialize``, the
run worker of every run and ``stockturn run`` all import ``orchestration.definitions`` too, and
``DbtProject.prepare_if_dev()`` only acts under ``dagster dev``. So the manifest is prepared whenever the one
for the current project content is missing:

* **Where.** ``dbt_project/target/dagster/manifest-<fingerprint>/manifest.json``. The fingerprint hashes every
  file of the dbt project (models, macros, tests, YAML; not ``target/``, ``logs/``, ``dbt_packages/``), the seed
  CSVs (``seed-paths`` points at ``../seeds``) and the dbt version. It never collides with
  ``orchestration/dbt_cli.py``'s per-warehouse ``<dir>/.<warehouse>.dbt/target`` nor with a plain ``dbt parse``
  into ``dbt_project/target``; an edited model gives a new fingerprint, so a stale manifest is never used
  (``prepare_if_dev`` would re-parse into one shared folder on every reload instead).
* **Concurrency.** ``dbt parse`` writes into a private temporary folder beside it which is then renamed into
  place (one atomic ``rename``). Concurrent test runs, the webserver's code server and run workers that load
  the definitions at the same moment either find a complete manifest or each parse their own and one rename
  wins; nobody reads a half-written ``manifest.json``. The previous manifest's ``partial_parse.msgpack`` is
  copied in first, so a re-parse after editing one model is partial (dbt checks its validity itself).
* **Which warehouse.** Parsing does not open the warehouse. It runs with ``STOCKTURN_WAREHOUSE`` pointing at a
  fixed, never-created ``warehouse.duckdb`` inside the temporary folder, so the manifest does not depend on
  the environment (dbt-duckdb names the database after the file stem: ``warehouse``, as the default one).
  Runs execute dbt against the configured warehouse (see ``orchestration.defs.resources``).
* **Clean-up.** Only the newest :data:`KEEP_MANIFESTS` manifest folders are kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from ml.settings import DBT_PROJECT_DIR, WAREHOUSE_ENV

log = logging.getLogger("stockturn.dagster")

#: Folder (relative to the dbt project) holding the manifest folders Dagster uses.
MANIFEST_ROOT = Path("target") / "dagster"
MANIFEST_PREFIX = "manifest-"
KEEP_MANIFESTS = 3
_SKIP_DIRS = {"target", "logs", "dbt_packages", "__pycache__", ".user.yml"}


class ManifestError(RuntimeError):
    """dbt could not parse the project; the message carries dbt's output."""


def outside_paths(project_dir: Path) -> list[Path]:
    """Folders of the project that lie outside it (``seed-paths: ["../seeds"]`` and the like)."""
    import yaml

    config = yaml.safe_load((Path(project_dir) / "dbt_project.yml").read_text()) or {}
    found = []
    for key in ("model-paths", "seed-paths", "test-paths", "macro-paths", "snapshot-paths", "analysis-paths"):
        for rel in config.get(key) or []:
            path = (Path(project_dir) / rel).resolve()
            if not path.is_relative_to(Path(project_dir).resolve()) and path not in found:
                found.append(path)
    return found


def project_fingerprint(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """Hash of every file the manifest depends on (paths and contents) and of the dbt version."""
    from dbt.version import __version__ as dbt_version

    project_dir = Path(project_dir)
    h = hashlib.sha256(f"dbt {dbt_version}\n".encode())
    roots = [("project", project_dir)] + [(f"outside:{os.path.relpath(p, project_dir)}", p)
                                          for p in outside_paths(project_dir)]
    for label, root in roots:
        if not root.is_dir():
            continue
        for path in sorted(_project_files(root)):
            h.update(f"{label}/{path.relative_to(root).as_posix()}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _project_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if name not in _SKIP_DIRS and not name.startswith("."):
                yield Path(dirpath) / name


def manifest_target_path(fingerprint: str) -> Path:
    """The target path (relative to the dbt project) of the manifest for ``fingerprint``."""
    return MANIFEST_ROOT / f"{MANIFEST_PREFIX}{fingerprint}"


def ensure_manifest(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """Return the path of the manifest for the project's current content, running ``dbt parse`` if missing."""
    project_dir = Path(project_dir)
    fingerprint = project_fingerprint(project_dir)
    final = project_dir / manifest_target_path(fingerprint)
    manifest = final / "manifest.json"
    if manifest.exists():
        return manifest
    root = project_dir / MANIFEST_ROOT
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{fingerprint}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        previous = _newest_manifest_dir(root)
        if previous is not None and (previous / "partial_parse.msgpack").exists():
            shutil.copy2(previous / "partial_parse.msgpack", tmp / "partial_parse.msgpack")
        t0 = time.perf_counter()
        _dbt_parse(project_dir, tmp)
        log.info("parsed the dbt project into %s in %.1f s", final, time.perf_counter() - t0)
        try:
            tmp.rename(final)
        except OSError:  # another process renamed its (identical) parse into place first
            if not manifest.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(root, keep=final)
    return manifest


def _dbt_parse(project_dir: Path, target: Path) -> None:
    from orchestration.dbt_cli import dbt_executable

    env = dict(os.environ)
    env[WAREHOUSE_ENV] = str(target / "warehouse.duckdb")  # never opened by `dbt parse`
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["DBT_USE_COLORS"] = "false"
    for name in ("DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_PROJECT_DIR", "DBT_PROFILES_DIR"):
        env.pop(name, None)
    cmd = [
        dbt_executable(), "parse", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
        "--target-path", str(target), "--log-path", str(target),
    ]
    proc = subprocess.run(cmd, cwd=project_dir, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (target / "manifest.json").exists():
        raise ManifestError(f"dbt parse failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")


def _newest_manifest_dir(root: Path) -> Path | None:
    dirs = [d for d in root.glob(f"{MANIFEST_PREFIX}*") if (d / "manifest.json").exists()]
    return max(dirs, key=lambda d: d.stat().st_mtime, default=None)


def _prune(root: Path, *, keep: Path) -> None:
    dirs = sorted(root.glob(f"{MANIFEST_PREFIX}*"), key=lambda d: d.stat().st_mtime, reverse=True)
    for old in dirs[KEEP_MANIFESTS:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
    cutoff = time.time() - 3600
    for stale in root.glob(".tmp-*"):  # left behind by a killed parse
        try:
            if stale.stat().st_mtime < cutoff:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
