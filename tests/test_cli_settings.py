"""How `acd serve` picks its settings: the demo only for a bare start on the local database."""

from __future__ import annotations

import argparse

import pytest

from acd.cli import _settings


def serve_args(**given: object) -> argparse.Namespace:
    fields = {"config": None, "host": None, "port": None, "database_url": None, "sip_port": None}
    return argparse.Namespace(**{**fields, **given})


def test_a_bare_start_loads_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACD_DATABASE_URL", raising=False)
    monkeypatch.delenv("ACD_CONFIG", raising=False)
    assert _settings(serve_args()).demo


def test_a_database_named_in_the_environment_gets_no_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACD_CONFIG", raising=False)
    monkeypatch.setenv("ACD_DATABASE_URL", "postgresql+asyncpg://acd@db/acd")
    assert not _settings(serve_args()).demo


def test_a_database_named_on_the_command_line_gets_no_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACD_DATABASE_URL", raising=False)
    monkeypatch.delenv("ACD_CONFIG", raising=False)
    url = "postgresql+asyncpg://acd@db/acd"
    assert not _settings(serve_args(database_url=url)).demo


def test_a_configuration_file_gets_no_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACD_DATABASE_URL", raising=False)
    monkeypatch.setenv("ACD_CONFIG", "centre.yaml")
    assert not _settings(serve_args()).demo
