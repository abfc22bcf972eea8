"""Check the licences of every distribution installed in this environment.

Run with the project's interpreter: ``.venv/bin/python scripts/check-licences.py``
(``scripts/test`` does). It reads what ``pip-licenses`` finds in each distribution's
metadata (the ``License-Expression`` field, the ``License`` field and the ``License ::``
classifiers) and fails when

- any of them names the GPL family (GPL, LGPL, AGPL, "GNU General Public", "GNU Lesser",
  "GNU Affero", "GNU Library"): mailroom is MIT and ships as one program with them;
- none of them is a licence we recognise as permissive (MPL-2.0 counts: file-level
  copyleft only), unless the distribution is in ``VERIFIED`` below, where someone read its
  licence text and wrote down what it is. An entry names the version it was checked for;
  another version fails until it is checked again.

Everything installed is checked, the dev tools and pip-licenses itself included.

The web app's npm packages are checked from ``web/package-lock.json`` (every package npm
would install, the build and test tools included): each entry's ``license`` must be an SPDX
expression of permissive licences, else the package must be in ``NPM_VERIFIED``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple


class Verified(NamedTuple):
    version: str
    licence: str
    why: str


#: Distributions whose metadata names no licence we recognise, checked by hand.
VERIFIED: dict[str, Verified] = {
    # Metadata: License "BSD-like", classifier "DFSG approved". The file
    # dkimpy-1.1.8.dist-info/licenses/LICENSE (and the header of dkim/__init__.py) is the
    # zlib licence text, word for word: "Permission is granted to anyone to use this
    # software for any purpose, including commercial applications, and to alter it and
    # redistribute it freely, subject to the following restrictions: 1. The origin ...".
    "dkimpy": Verified("1.1.8", "Zlib", "dist-info/licenses/LICENSE is the zlib licence"),
}

#: npm packages whose lock entry names no licence we recognise, checked by hand.
NPM_VERIFIED: dict[str, Verified] = {}

LOCK_FILE = Path(__file__).resolve().parent.parent / "web" / "package-lock.json"

COPYLEFT = re.compile(r"\b[AL]?GPL|GNU\s+(Affero|Lesser|Library|General\s+Public)", re.IGNORECASE)

#: SPDX identifiers accepted as permissive (lower case).
SPDX_OK = {
    "0bsd", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "cc0-1.0", "hpnd", "isc", "mit",
    "mit-0", "mpl-2.0", "psf-2.0", "python-2.0", "unlicense", "zlib",
}  # fmt: skip

#: Trove classifiers and free-text ``License`` values accepted as permissive (normalised),
#: with the name the summary counts them under.
NAMES_OK = {
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "apache software license": "Apache",
    "bsd": "BSD",
    "bsd license": "BSD",
    "bsd 2 clause license": "BSD-2-Clause",
    "bsd 3 clause license": "BSD-3-Clause",
    "isc license": "ISC",
    "isc license iscl": "ISC",
    "mit license": "MIT",
    "mit licence": "MIT",
    "mozilla public license 2.0 mpl 2.0": "MPL-2.0",
    "psfl": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "the unlicense unlicense": "Unlicense",
    "zlib libpng license": "Zlib",
}


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", " ", text.lower()).strip()


def _expression_ok(expression: str) -> bool:
    """Every licence named in an SPDX expression is permissive (``OR`` is read as ``AND``)."""
    without_exceptions = re.sub(r"\bWITH\s+\S+", " ", expression)
    terms = [t for t in re.split(r"\s+(?:AND|OR)\s+|[()\s]+", without_exceptions) if t]
    return bool(terms) and all(t.lower() in SPDX_OK for t in terms)


def _recognised(text: str) -> str | None:
    """The licence ``text`` names when it is permissive (for the summary), else None."""
    if _expression_ok(text):
        return text
    return NAMES_OK.get(_normalise(text))


def _values(entry: dict[str, str]) -> list[tuple[str, str]]:
    """(source, value) for every licence statement in the metadata, UNKNOWN left out."""
    out: list[tuple[str, str]] = []
    for key, source in (("License-Expression", "expression"), ("License-Metadata", "License")):
        value = entry.get(key, "UNKNOWN").strip()
        if value and value != "UNKNOWN":
            out.append((source, value))
    for value in entry.get("License-Classifier", "UNKNOWN").split("; "):
        if value.strip() and value.strip() != "UNKNOWN":
            out.append(("classifier", value.strip()))
    return out


def _installed() -> list[dict[str, str]]:
    tool = Path(sys.executable).with_name("pip-licenses")
    result = subprocess.run(
        [str(tool), "--python", sys.executable, "--with-system", "--from=all", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    entries: list[dict[str, str]] = json.loads(result.stdout)
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for entry in entries:
        seen.setdefault((entry["Name"].lower(), entry["Version"]), entry)
    return sorted(seen.values(), key=lambda e: e["Name"].lower())


def check_npm(lock_file: Path, problems: list[str]) -> Counter[str]:
    """The licences of the packages in an npm lock file; what is wrong goes to ``problems``."""
    licences: Counter[str] = Counter()
    lock = json.loads(lock_file.read_text())
    for path, entry in sorted(lock.get("packages", {}).items()):
        if not path:  # the web app itself
            continue
        name = path.rpartition("node_modules/")[2]
        version = entry.get("version", "?")
        licence = entry.get("license")
        if isinstance(licence, dict):  # the old {"type": ...} form
            licence = licence.get("type")
        text = licence if isinstance(licence, str) else ""
        if COPYLEFT.search(text):
            problems.append(f"npm {name} {version}: GPL-family licence ({text!r})")
        elif _expression_ok(text):
            licences[text] += 1
        elif (verified := NPM_VERIFIED.get(name)) is not None and verified.version == version:
            licences[verified.licence] += 1
        else:
            problems.append(
                f"npm {name} {version}: licence not recognised ({text or 'none in the lock file'!r}); "
                "read its LICENSE in web/node_modules and add it to NPM_VERIFIED, or drop the package"
            )
    return licences


def main() -> int:
    problems: list[str] = []
    licences: Counter[str] = Counter()
    by_hand: list[str] = []
    installed = _installed()
    for entry in installed:
        name, version = entry["Name"], entry["Version"]
        values = _values(entry)
        shown = "; ".join(f"{source}: {value[:80]!r}" for source, value in values) or "no licence in metadata"
        copyleft = [value for _, value in values if COPYLEFT.search(value)]
        if copyleft:
            problems.append(f"{name} {version}: GPL-family licence ({shown})")
            continue
        recognised = [known for _, value in values if (known := _recognised(value))]
        if recognised:
            licences[recognised[0]] += 1
            continue
        verified = VERIFIED.get(name.lower())
        if verified is None:
            problems.append(
                f"{name} {version}: licence not recognised ({shown}); read its licence file in "
                "site-packages and add it to VERIFIED in scripts/check-licences.py, or drop the package"
            )
        elif verified.version != version:
            problems.append(
                f"{name} {version}: VERIFIED names version {verified.version}; check the licence of "
                f"{version} again and update the entry"
            )
        else:
            licences[verified.licence] += 1
            by_hand.append(f"{name} {version} ({verified.licence}: {verified.why})")
    stale = sorted(set(VERIFIED) - {e["Name"].lower() for e in installed})

    summary = ", ".join(f"{licence} {count}" for licence, count in licences.most_common())
    print(f"licences: {len(installed)} distributions checked: {summary}")
    for line in by_hand:
        print(f"licences: verified by hand: {line}")
    for name in stale:
        print(f"licences: note: VERIFIED lists {name}, which is not installed")
    if LOCK_FILE.is_file():
        npm = check_npm(LOCK_FILE, problems)
        summary = ", ".join(f"{licence} {count}" for licence, count in npm.most_common())
        print(f"licences: {sum(npm.values())} npm packages (web/package-lock.json): {summary}")
    for line in problems:
        print(f"licences: FAIL {line}", file=sys.stderr)
    if problems:
        print(f"licences: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("licences: ok (no GPL/LGPL/AGPL, nothing unverified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
