"""The one lock: every package any install of the project takes, pinned, in `constraints.txt`.

`make setup` (`.[cpu,dev]`), CI (the same) and the image (`.[cpu,cluster]` or `.[gpu,cluster]`) all install
with `pip install --constraint constraints.txt`, so a laptop, CI and a pod run the same versions. pip's own
resolver makes the lock (a dry run with `--report`: nothing is installed) from `pyproject.toml`'s ranges,
every extra at once, plus pip itself.

    python scripts/lock.py            # `make lock`: after editing pyproject.toml; keeps every pin still allowed
    python scripts/lock.py --upgrade  # `make lock-upgrade`: the newest versions the ranges allow
    python scripts/lock.py --check    # exit 1 with one line per disagreement between lock and pyproject.toml
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
HEADER = ("# The one lock (scripts/lock.py, `make lock`): every package of `pip install '.[{extras}]'` and pip,\n"
          "# pinned for Python 3.11 on linux x86_64. Every install uses it: pip install --constraint constraints.txt\n"
          "# pyproject requirements sha256: {digest}\n")
DIGEST = re.compile(r"^# pyproject requirements sha256: (\w+)$", re.M)


def canonical(name: str) -> str:
    """PEP 503 names: prometheus_client and prometheus-client are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def extras() -> list[str]:
    return sorted(project()["optional-dependencies"])


def requirements() -> list[str]:
    """Every requirement pyproject.toml states, base and extras."""
    return project()["dependencies"] + [r for extra in extras() for r in project()["optional-dependencies"][extra]]


def digest() -> str:
    """Of the requirements as stated: any edit to them (a package added or dropped, a range moved) changes it."""
    return hashlib.sha256("\n".join(sorted(requirements())).encode()).hexdigest()


def pins() -> dict[str, str]:
    lines = LOCK.read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if line and not line.startswith("#"))


def disagreements() -> list[str]:
    """One line per way the lock and pyproject.toml disagree; empty when they agree."""
    from packaging.requirements import Requirement

    locked = pins()
    problems = [f"{requirement.name}: not in {LOCK.name}" if canonical(requirement.name) not in locked else
                f"{requirement.name}: {LOCK.name} pins {locked[canonical(requirement.name)]}, "
                f"outside pyproject.toml's '{requirement.specifier}'"
                for requirement in map(Requirement, requirements())
                if not requirement.specifier.contains(locked.get(canonical(requirement.name), "0"), prereleases=True)
                or canonical(requirement.name) not in locked]
    stated = DIGEST.search(LOCK.read_text())
    if not stated or stated.group(1) != digest():
        problems.append(f"pyproject.toml's requirements changed since {LOCK.name} was made")
    return [f"{problem}: run `make lock`" for problem in problems]


def resolve(keep: dict[str, str]) -> dict[str, str]:
    """pip resolves the project with every extra, as a fresh install would (nothing installed is reused),
    preferring the pins in ``keep``: when they cannot all hold, it resolves afresh."""
    with tempfile.TemporaryDirectory() as scratch:
        report, preferred = Path(scratch) / "report.json", Path(scratch) / "keep.txt"
        preferred.write_text("".join(f"{name}=={version}\n" for name, version in keep.items()))
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--report", str(report), f".[{','.join(extras())}]", "pip"]
        kept = subprocess.run([*command, "--constraint", str(preferred)], cwd=ROOT, check=False)
        if kept.returncode != 0:
            print("the current pins cannot all hold: resolving afresh", file=sys.stderr)
            subprocess.run(command, cwd=ROOT, check=True)
        installs = json.loads(report.read_text())["install"]
    pins = {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}
    pins.pop("apparel", None)
    return pins


def write(pins: dict[str, str]) -> None:
    body = "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    LOCK.write_text(HEADER.format(extras=",".join(extras()), digest=digest()) + body)


def main(argv: list[str]) -> None:
    if argv == ["--check"]:
        problems = disagreements()
        print("\n".join(problems) or f"{LOCK.name} agrees with pyproject.toml")
        raise SystemExit(1 if problems else 0)
    if argv not in ([], ["--upgrade"]):
        raise SystemExit("usage: python scripts/lock.py [--upgrade | --check]")
    write(resolve({} if argv or not LOCK.is_file() else pins()))
    print(f"pinned {len(pins())} packages in {LOCK.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
