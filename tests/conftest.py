"""Shared fixtures: the test session never writes into the user's real caches, and D-Wave token set-ups.

* Every test runs with ``QANNEALQ_CACHE`` (trained models), ``XDG_DATA_HOME`` (minorminer's busclique clique
  cache, located through ``homebase``) and ``XDG_CACHE_HOME`` pointing into the session's temporary folder.
* ``no_dwave_token`` / ``fake_dwave_token``: an environment without any D-Wave token, or with a fake one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py and tests/backend_fixtures.py

from backend_fixtures import FAKE_TOKEN  # noqa: E402

_ISOLATED = ("QANNEALQ_CACHE", "XDG_DATA_HOME", "XDG_CACHE_HOME")


@pytest.fixture(scope="session", autouse=True)
def isolated_caches(tmp_path_factory):
    """Point every cache the code or its dependencies write to into a temporary folder, for the session.

    minorminer's busclique finds its clique cache through ``homebase.user_data_dir``, which inside a
    virtualenv ignores ``XDG_DATA_HOME`` (it uses ``sys.prefix/data``), so that function is redirected too.
    """
    root = tmp_path_factory.mktemp("caches")
    with pytest.MonkeyPatch.context() as mp:
        for var in _ISOLATED:
            mp.setenv(var, str(root / var.lower()))
        try:
            import homebase
        except ImportError:  # no D-Wave extra installed: nothing uses it
            homebase = None
        if homebase is not None:
            data = root / "user_data"
            mp.setattr(homebase, "user_data_dir",
                       lambda app_name, app_author=None, version=None, *args, **kwargs:
                       str(data / (app_name if version is None else f"{app_name}_{version}")))
        yield root


def _isolate_dwave_config(monkeypatch, tmp_path) -> None:
    """The dwave config is an empty file (``DWAVE_CONFIG_FILE`` replaces the search for one)."""
    empty = tmp_path / "dwave.conf"
    empty.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(empty))
    for var in ("DWAVE_API_TOKEN", "DWAVE_PROFILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def no_dwave_token(monkeypatch, tmp_path):
    """An environment without any D-Wave API token."""
    _isolate_dwave_config(monkeypatch, tmp_path)


@pytest.fixture
def fake_dwave_token(monkeypatch, tmp_path):
    """``DWAVE_API_TOKEN`` set to :data:`FAKE_TOKEN` (and no config file)."""
    _isolate_dwave_config(monkeypatch, tmp_path)
    monkeypatch.setenv("DWAVE_API_TOKEN", FAKE_TOKEN)
    return FAKE_TOKEN


@pytest.fixture
def no_warm_up(monkeypatch):
    """The solve loop without its warm-up on a stand-in layer (``qannealq.solve.warm_up``), for tests that count
    a layer's own calls or products (the warm-up's stand-in solve would add to them, once per process and kind
    of layer: whether it runs depends on the tests before). It has tests of its own (``test_warm_up.py``)."""
    from qannealq import solve

    monkeypatch.setattr(solve, "warm_up", lambda *args, **kwargs: 0.0)
