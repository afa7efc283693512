"""Dependencies of the root meta-distribution: the four packages of this checkout, by absolute path.

PEP 508 direct references must be absolute URLs, so they are computed here from this file's
location rather than written into pyproject.toml.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
PACKAGES = {
    "deception-core": "[embedded,sae,transformer-lens]",
    "deception-scenarios": "",
    "deception-probes": "",
    "deception-causal": "",
}

# Each package is named once plainly and once with its extras: older pip resolvers (23.x) do not
# match another package's plain "deception-core>=0.1" to a direct reference that carries extras.
requirements = [f"{name} @ {(ROOT / 'packages' / name).as_uri()}" for name in PACKAGES]
requirements += [f"{name}{extras} @ {(ROOT / 'packages' / name).as_uri()}" for name, extras in PACKAGES.items() if extras]

setup(install_requires=requirements)
