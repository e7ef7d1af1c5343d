"""Node.js tools for tests that check our output with other implementations (graphql-http,
ical.js): installed once per test session into a temp folder, skipped with the reason when
node, npm or the registry is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL_TIMEOUT = 300


def npm_folder(tmp_path_factory, name: str, packages: list[str], script_name: str,
               script: str, why: str) -> tuple[str, Path]:
    """(node, script path) in a folder with `packages` installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip(f"node and npm are needed {why}")
    folder = tmp_path_factory.mktemp(name)
    (folder / "package.json").write_text('{"private": true, "type": "module"}', encoding="utf-8")
    try:
        installed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-progress", *packages],
            cwd=folder, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {' '.join(packages)} timed out (no network?)")
    if installed.returncode != 0:
        errors = [line for line in installed.stderr.splitlines() if line.startswith("npm error")]
        pytest.skip(f"npm install {' '.join(packages)} failed (no network?): "
                    + " | ".join(errors[:3] or [installed.stderr.strip()[-300:]]))
    path = folder / script_name
    path.write_text(script, encoding="utf-8")
    return node, path
