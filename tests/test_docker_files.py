"""docker/ stays in step with what `make` and the tests run (no Docker engine here).

The image must install the packages pyproject.toml ships and start the node through
the same factory bench/node.py starts (``node.app:main_app``), and
every setting the compose file passes must be one the node reads.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())


def test_the_image_copies_every_shipped_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]
                ["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", DOCKERFILE, re.M))
    assert packages <= copied, packages - copied
    assert "pip install --no-cache-dir '.[postgres]'" in DOCKERFILE


def test_the_image_starts_the_node_factory_the_tests_start() -> None:
    assert '"--factory", "node.app:main_app"' in DOCKERFILE
    from node.app import main_app  # the factory exists and is importable

    assert callable(main_app)
    # bench/node.py starts its node process the same way.
    assert '"--factory", "node.app:main_app"' in (ROOT / "bench" / "node.py").read_text()


def test_compose_passes_only_settings_the_node_reads() -> None:
    config_source = (ROOT / "node" / "config.py").read_text()
    read = set(re.findall(r'"(TRADELEDGER_[A-Z_]+)"', config_source)) | {"DATABASE_URL"}
    env = COMPOSE["services"]["node"]["environment"]
    assert set(env) <= read, set(env) - read
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert COMPOSE["services"]["node"]["ports"] == ["127.0.0.1:8700:8700"]
