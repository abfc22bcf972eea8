"""requirements.lock pins every dependency pyproject.toml asks for, within its range.

scripts/setup installs the lock, so a range widened or a package added in pyproject.toml
without `scripts/lock` would otherwise go unnoticed until a fresh machine resolves it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version.strip()
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    return [Requirement(spec) for spec in specs]


def test_every_dependency_is_locked_within_its_range() -> None:
    pins = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in pyproject.toml but not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock has {requirement.name}=={pins[name]}, outside {requirement.specifier}"
        )


def test_pyproject_uses_ranges_not_exact_pins() -> None:
    exact = [str(r) for r in declared() if any(s.operator == "==" for s in r.specifier)]
    assert not exact, f"pin exact versions in requirements.lock, not pyproject.toml: {exact}"
