"""The AiiDA engine from the command line, as a user runs it.  The production profile for real: ``sus2 aiida setup
--profile sus2-production`` creates a ``core.psql_dos`` profile on the local PostgreSQL with RabbitMQ (inside the
project's ``AIIDA_PATH``), and a campaign submitted to its daemon gives the inline engine's documents (skipped where
no PostgreSQL or RabbitMQ answers on localhost; they run on every development machine and in CI).  The embedded
profile: submitting without its daemon says how to start it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from ..test_campaign_core import DETERMINISTIC
from .conftest import ROOT

BIN = Path(sys.executable).parent
AWAIT = """
import sys, time
from aiida import load_profile, orm
load_profile("sus2-production")
node = orm.load_node(int(sys.argv[1]))
start = time.monotonic()
while not node.is_terminated and time.monotonic() - start < 900:
    time.sleep(2)
print(node.exit_status, node.outputs.result.value.result_hashes if node.is_finished_ok else node.exit_message)
"""


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("localhost", port)) == 0


@pytest.mark.slow
@pytest.mark.skipif(not (_answers(5432) and _answers(5672)), reason="no PostgreSQL/RabbitMQ on localhost")
def test_a_campaign_submitted_to_the_production_profiles_daemon_equals_the_inline_engine(tmp_path, inline_result):
    name = f"sus2_test_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AIIDA_PATH": str(tmp_path / ".aiida"), "SUS2_AIIDA_DB_NAME": name,
           "SUS2_AIIDA_DB_USER": name, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "SUS2_TEST_COUNTER": str(tmp_path / "calls.txt")}
    run = lambda *command: subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,  # noqa
                                          timeout=1000)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(DETERMINISTIC))
    try:
        setup = run(str(BIN / "sus2"), "aiida", "setup", "--profile", "sus2-production")
        assert "storage core.psql_dos, broker core.rabbitmq" in setup.stdout, setup.stderr
        assert run(str(BIN / "verdi"), "-p", "sus2-production", "daemon", "start", "1").returncode == 0
        submitted = run(str(BIN / "sus2"), "campaign", "run", str(spec), "--engine", "aiida", "--profile",
                        "sus2-production", "--submit", "--folder", str(tmp_path / "campaign"))
        assert submitted.returncode == 0, submitted.stderr
        pk = submitted.stdout.split("[")[-1].split("]")[0]
        awaited = run(str(BIN / "python"), "-c", AWAIT, pk)
        assert awaited.stdout.startswith("0 "), awaited.stdout + awaited.stderr
        config = json.loads((tmp_path / ".aiida" / "config.json").read_text())
        storage = config["profiles"]["sus2-production"]["storage"]
        assert storage["backend"] == "core.psql_dos" and storage["config"]["database_name"] == name
        assert config["profiles"]["sus2-production"]["options"]["caching.default_enabled"] is True
        assert config["profiles"]["sus2-production"]["process_control"]["backend"] == "core.rabbitmq"
        assert awaited.stdout.split(" ", 1)[1].strip() == str(inline_result.result_hashes)
    finally:
        run(str(BIN / "verdi"), "-p", "sus2-production", "daemon", "stop")
        run(str(BIN / "verdi"), "profile", "delete", "--delete-data", "--force", "sus2-production")
        subprocess.run(["psql", "-h", "localhost", "-U", "postgres", "-c", f'DROP DATABASE IF EXISTS "{name}"',
                        "-c", f'DROP ROLE IF EXISTS "{name}"'], capture_output=True)


def test_submitting_to_the_embedded_profile_without_its_daemon_says_how_to_start_it(tmp_path):
    env = {**os.environ, "AIIDA_PATH": str(tmp_path / ".aiida")}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(DETERMINISTIC))
    out = subprocess.run([str(BIN / "sus2"), "campaign", "run", str(spec), "--engine", "aiida", "--submit",
                          "--folder", str(tmp_path / "campaign")], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2 and f"AIIDA_PATH={tmp_path / '.aiida'} verdi -p sus2 daemon start" in out.stderr
    assert "Traceback" not in out.stderr
    config = json.loads((tmp_path / ".aiida" / "config.json").read_text())
    assert config["default_profile"] == "sus2" and config["profiles"]["sus2"]["storage"]["backend"] == \
        "core.sqlite_dos" and config["profiles"]["sus2"]["process_control"]["backend"] == "core.zeromq"
