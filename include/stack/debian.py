"""Servers the stack takes from Debian (redis-server, prometheus): found on PATH, else installed when root."""

from __future__ import annotations

import os
import shutil
import subprocess


def binary(command: str, *, package: str, otherwise: str) -> str:
    """The path of ``command``; when missing and running as root (CI, these machines), apt-get installs
    ``package`` first. ``otherwise`` ends the error a non-root user gets (what else would do)."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError(
            f"{command} not found: install Debian's {package} package (apt-get install {package}), {otherwise}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    # --no-install-recommends: the package alone. Its init-system service is never started here (no init
    # system); the stack runs the binary itself on a port it pins.
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    found = shutil.which(command)
    if not found:
        raise RuntimeError(f"apt-get installed {package} but {command} is not on PATH")
    return found
