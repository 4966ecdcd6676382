"""The AiiDA profiles campaigns run in, configured inside the project: ``AIIDA_PATH`` (the Makefile's, or ``.aiida``
in the working directory where it is unset), never the home folder.

- ``sus2`` (embedded, the default): ``core.sqlite_dos`` storage and AiiDA's built-in ZeroMQ broker, so the daemon
  runs with no servers at all.
- ``sus2-production``: ``core.psql_dos`` on PostgreSQL and RabbitMQ (``core.rabbitmq``), on localhost unless the
  ``SUS2_AIIDA_DB_*`` variables say otherwise.  RabbitMQ from 3.8.15 on cancels a consumer that holds a task longer
  than ``consumer_timeout`` (30 min by default), and a campaign holds its tasks for hours: set ``consumer_timeout``
  to ``undefined`` in RabbitMQ's ``advanced.config`` (AiiDA warns about it on every load until then).

Both are created on first use, with caching on (a campaign run again computes nothing again)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...errors import Sus2WorkflowError
from ...hashing import content_key

EMBEDDED = "sus2"
PRODUCTION = "sus2-production"
USER = {"email": "sus2@localhost", "first_name": "SUS2", "last_name": "campaign", "institution": "sus2"}


def use_project_config() -> Path:
    """Point AiiDA at the project's configuration folder (``$AIIDA_PATH``; ``./.aiida`` where unset) before AiiDA is
    imported; returns it."""
    os.environ.setdefault("AIIDA_PATH", str(Path.cwd() / ".aiida"))
    return Path(os.environ["AIIDA_PATH"])


def config_folder() -> Path:
    """The loaded AiiDA configuration's folder: profiles' files, this machine's scratch, models brought back."""
    from aiida.manage.configuration import get_config

    return Path(get_config().dirpath)


def _database_settings(root: Path) -> dict[str, Any]:
    """PostgreSQL settings of the production profile: host, port, superuser (to create the database) and the
    profile's own database and role, named after the configuration folder ``root`` unless set (two checkouts never
    share a database, whose repository lives in one of them)."""
    env = os.environ.get
    default = f"sus2_{content_key(str(root.resolve()))[:10]}"
    return {"host": env("SUS2_AIIDA_DB_HOST", "localhost"), "port": int(env("SUS2_AIIDA_DB_PORT", "5432")),
            "superuser": env("SUS2_AIIDA_DB_SUPERUSER", "postgres"), "database": env("SUS2_AIIDA_DB_NAME", default),
            "user": env("SUS2_AIIDA_DB_USER", default), "password": env("SUS2_AIIDA_DB_PASSWORD", "sus2")}


def create_database(settings: dict[str, Any]) -> None:
    """Create the profile's PostgreSQL role and database where they do not exist (UTF-8 from ``template0``:
    AiiDA's own helper insists on an ``en_US.UTF-8`` locale many servers lack)."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(host=settings["host"], port=settings["port"], user=settings["superuser"],
                             dbname="postgres", autocommit=True) as connection:
            if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (settings["user"],)).fetchone() is None:
                connection.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(settings["user"]), sql.Literal(settings["password"])))
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (settings["database"],)).fetchone() is None:
                connection.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(settings["database"]), sql.Identifier(settings["user"])))
    except psycopg.Error as exc:
        raise Sus2WorkflowError(f"PostgreSQL at {settings['host']}:{settings['port']} (as {settings['superuser']}): "
                                f"{exc}".strip()) from None


def storage_and_broker(name: str, root: Path) -> dict[str, Any]:
    """``create_profile``'s storage and broker arguments of profile ``name`` (embedded unless it is the production
    one), its files under ``root``."""
    if name != PRODUCTION:
        return {"storage_backend": "core.sqlite_dos", "storage_config": {"filepath": str(root / "storage" / name)},
                "broker_backend": "core.zeromq", "broker_config": {}}
    settings = _database_settings(root)
    create_database(settings)
    return {"storage_backend": "core.psql_dos",
            "storage_config": {"database_engine": "postgresql_psycopg", "database_hostname": settings["host"],
                               "database_port": settings["port"], "database_username": settings["user"],
                               "database_password": settings["password"], "database_name": settings["database"],
                               "repository_uri": (root / "repository" / name).as_uri()},
            "broker_backend": "core.rabbitmq", "broker_config": {}}


def load_campaign_profile(name: str | None = None):
    """Load the AiiDA profile ``name`` (default: the configuration's default profile, else the embedded one),
    creating ``sus2`` or ``sus2-production`` on first use; :class:`Sus2WorkflowError` for another unknown name."""
    use_project_config()
    from aiida import load_profile
    from aiida.manage.configuration import create_profile, get_config

    config = get_config(create=True)
    name = name or config.default_profile_name or EMBEDDED
    if name not in config.profile_names:
        if name not in (EMBEDDED, PRODUCTION):
            raise Sus2WorkflowError(f"AiiDA profile {name!r} is not configured in {config.dirpath} (known: "
                                    f"{', '.join(config.profile_names) or 'none'}; {EMBEDDED} and {PRODUCTION} are "
                                    "created on first use)")
        create_profile(config, name=name, **storage_and_broker(name, Path(config.dirpath)), **USER)
        config.set_option("caching.default_enabled", True, scope=name)
        config.set_option("daemon.timeout", 30, scope=name)  # seconds: AiiDA's 2 s fails on a loaded login node
        if name == EMBEDDED:  # the ZeroMQ broker runs with the daemon only: a run without it polls for its children
            config.set_option("runner.poll.interval", 1, scope=name)
        if config.default_profile_name is None:
            config.set_default_profile(name)
        config.store()
    return load_profile(name, allow_switch=True)
