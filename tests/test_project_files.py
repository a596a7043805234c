"""The files that say what the project is and how it may be used: LICENSE, DATA_LICENSES.md,
CITATION.cff (validated against the CFF 1.2.0 JSON schema, vendored in tests/data from the
Citation File Format project, CC-BY-4.0), CHANGELOG.md; versions agree across them."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

import unet_helpers

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "tests" / "data" / "citation-cff-1.2.0.schema.json").read_text())
PYPROJECT = {key: re.search(rf'^{key} = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE).group(1)
             for key in ("version", "license")}  # no tomllib: Python 3.10 is supported


def cff_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def citation() -> dict:
    return yaml.safe_load((REPO / "CITATION.cff").read_text())


def test_citation_cff_is_valid_cff_1_2_0(citation):
    assert citation["cff-version"] == "1.2.0"
    assert cff_errors(citation) == []


def test_the_schema_check_rejects_what_cffconvert_rejects(citation):
    broken = copy.deepcopy(citation)
    broken["references"][0]["type"] = "dataset"  # CFF's word is "data"; cffconvert 2.0.0 refuses "dataset"
    del broken["authors"]
    errors = cff_errors(broken)
    assert any("'authors' is a required property" in e for e in errors), errors
    assert any(e.startswith("references/0/type") for e in errors), errors


def test_versions_and_licence_agree(citation):
    assert citation["version"] == PYPROJECT["version"] == unet_helpers.__version__
    assert citation["license"] == PYPROJECT["license"] == "MIT"
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "The U-Net course authors" in licence
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{PYPROJECT['version']}]" in changelog


def test_data_licences_carry_the_required_sstem_citation(citation):
    text = (REPO / "DATA_LICENSES.md").read_text()
    for required in ("CC BY-NC-SA 3.0", "10.6084/m9.figshare.856713", "Segmented anisotropic", "CC0",
                     "Gerhard", "Funke", "Martel", "Cardona", "Fetter", "BBBC038"):
        assert required in text, f"DATA_LICENSES.md must mention {required!r}"
    sstem = next(r for r in citation["references"] if r.get("doi") == "10.6084/m9.figshare.856713")
    assert [a["family-names"] for a in sstem["authors"]] == ["Gerhard", "Funke", "Martel", "Cardona", "Fetter"]
