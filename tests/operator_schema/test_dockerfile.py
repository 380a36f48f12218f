"""The Dockerfile, read as text: no Docker engine is needed (or available) to test it."""

from __future__ import annotations

import json
import re

from .conftest import REPO

DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        pairs.append((word.upper(), rest.strip()))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def test_both_stages_are_python_311_slim() -> None:
    bases = [rest.split()[0] for word, rest in _instructions() if word == "FROM"]
    assert bases == ["python:3.11-slim", "python:3.11-slim"]


def test_the_image_runs_as_uid_10001_not_root() -> None:
    users = [rest for word, rest in _final_stage() if word == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    # The last USER wins; nothing may switch back to root after it.
    assert users[-1].split(":")[0] == "10001"
    run = " ".join(rest for word, rest in _final_stage() if word == "RUN")
    assert "--uid 10001" in run


def test_the_entrypoint_is_csgen_in_exec_form() -> None:
    (entrypoint,) = [rest for word, rest in _instructions() if word == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["csgen"]


def test_the_final_stage_installs_only_the_built_wheels_without_extras() -> None:
    run = " ".join(rest for word, rest in _final_stage() if word == "RUN")
    assert "--no-index" in run
    assert "from=build" in run
    assert not re.search(r"csgen\[", run), "extras (local, test) must stay out of the image"
    copied = [rest for word, rest in _final_stage() if word == "COPY"]
    assert copied == [], "the final stage copies nothing from the build context"


def test_the_build_context_leaves_out_tests_and_the_venv() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**", "everything is excluded unless named"
    included = {p[1:] for p in patterns if p.startswith("!")}
    assert included == {"pyproject.toml", "README.md", "generator", "operator"}
