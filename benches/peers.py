"""The peers' benchmark venv: created on first use, never a dependency of plait."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".venv-peers"


def peer_python(*packages: str, version: str | None = None) -> Path:
    """A venv holding the peers, created (and topped up) on demand. Returns its python."""
    home = PEERS if version is None else HERE / f".venv-peers-{version}"
    python = home / "bin" / "python"
    if not python.exists():
        if version is None:
            venv.create(home, with_pip=True)
        else:
            base = Path.home() / ".pyenv" / "versions"
            interpreters = sorted(base.glob(f"{version}*/bin/python"))
            if not interpreters:
                raise SystemExit(f"no Python {version} under {base} for the peer venv")
            subprocess.run([str(interpreters[-1]), "-m", "venv", str(home)], check=True)
    missing = [p for p in packages if subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; m.version({p!r})"],
        capture_output=True).returncode != 0]
    if missing:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *missing], check=True)
    return python


def run_peer(python: Path, script: str, *args: str, timeout: float = 600,
             launcher: tuple[str, ...] = ()) -> dict:
    """Run a driver script with the peer venv; it prints one JSON object as its last line.

    ``launcher``: a command the peer needs around its interpreter (``frontrun`` wants its CLI,
    ``frontrun python ...``, to be active); empty runs the python directly."""
    done = subprocess.run([*launcher, str(python), "-c", script, *args], capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"peer driver failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peer_tool(python: Path, name: str) -> Path:
    """A console script installed in the peer venv next to its python (e.g. ``frontrun``)."""
    return python.parent / name


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ratio(a: float, b: float) -> str:
    if not b:
        return "n/a"
    return f"{a / b:.1f}x"


if __name__ == "__main__":  # pragma: no cover
    print(peer_python(*sys.argv[1:]))
