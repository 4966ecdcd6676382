"""AiiDA test profile (``aiida.tools.pytest_fixtures``): embedded storage (``core.sqlite_dos``) with the built-in
ZeroMQ broker, so the daemon runs with no servers; caching on, as in the profiles campaigns create.  The daemon's
workers import the test labeler from this checkout and count its calculations in one file for the session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# the daemon runs `verdi`, which AiiDA looks up on PATH when it is first imported
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

from aiida.tools.pytest_fixtures import *  # noqa: E402,F401,F403  (fixtures for this folder only)

from sus2_workflows.cache import store_workspace  # noqa: E402
from sus2_workflows.engines.inline import run_inline  # noqa: E402
from sus2_workflows.spec import CampaignSpec  # noqa: E402

from ..test_campaign_core import DETERMINISTIC  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def aiida_profile(aiida_config, aiida_profile_factory, tmp_path_factory):
    """The session's profile (for the tests in this folder); the environment the daemon's workers inherit is set
    before the daemon starts."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ["SUS2_TEST_COUNTER"] = str(tmp_path_factory.mktemp("counter") / "calls.txt")
    with aiida_profile_factory(aiida_config, broker_backend="core.zeromq") as profile:
        aiida_config.set_option("caching.default_enabled", True, scope=profile.name)
        aiida_config.set_option("daemon.timeout", 30, scope=profile.name)  # seconds; 2 s fails on a loaded machine
        aiida_config.store()
        yield profile


@pytest.fixture(scope="package", autouse=True)
def no_daemon_afterwards(aiida_profile):
    """Stop the daemon once this folder's tests are done: the rest of the suite runs without it."""
    yield
    from aiida.engine.daemon.client import DaemonNotRunningException, get_daemon_client

    try:
        get_daemon_client(aiida_profile.name).stop_daemon(wait=True)
    except DaemonNotRunningException:
        pass


@pytest.fixture
def calculations(aiida_profile) -> callable:
    """How many labels the test labeler has computed so far (in this process and the daemon's)."""
    path = Path(os.environ["SUS2_TEST_COUNTER"])
    return lambda: len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="session")
def inline_result(aiida_profile, tmp_path_factory):
    """The inline engine's result of the tests' deterministic campaign spec: what every AiiDA run must equal."""
    return run_inline(CampaignSpec.model_validate(DETERMINISTIC), store_workspace(tmp_path_factory.mktemp("inline")))
