"""Installing a server the tests need from Debian's packages, where a fresh machine lacks
it (no pytest here). Only as root with apt-get; the caller says what to do otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess


class NotInstallable(Exception):
    """The package could not be installed here; the message says why."""


def install(package: str) -> None:
    """``apt-get install`` Debian's ``package``. Raises NotInstallable where that cannot
    be done: not root, no apt-get, or apt-get failed (its last lines in the message)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise NotInstallable(f"{package} is missing, and there is no root apt-get to install it")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=900, check=False, env=environment
        )
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
            raise NotInstallable(f"{' '.join(command[:2])} {package} failed: {tail}")
