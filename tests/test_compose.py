"""The container set-up, read as files (no Docker engine needed): docker-compose.yml, the
proxy's nginx.conf, both Dockerfiles and .env.example say what the deployment promises."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from shared.config import load_settings
from shared.db.engine import create_engine, database_url
from shared.settings import Secrets, Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
NGINX = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
NGINX_NO_COMMENTS = re.sub(r"#[^\n]*", "", NGINX)
BUILT = {"brain": "Dockerfile.brain", "api": "Dockerfile.api"}


@dataclasses.dataclass(frozen=True)
class Dockerfile:
    """The final stage of a multi-stage Dockerfile: its instructions, continuation lines joined."""

    instructions: list[tuple[str, str]]

    @classmethod
    def read(cls, name: str) -> Dockerfile:
        text = (ROOT / name).read_text(encoding="utf-8").replace("\\\n", " ")
        lines = [line.strip() for line in text.splitlines()]
        steps = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
        final = max(i for i, step in enumerate(steps) if step[0].upper() == "FROM")
        return cls([(step[0].upper(), step[1] if len(step) > 1 else "") for step in steps[final:]])

    def all(self, instruction: str) -> list[str]:
        return [argument for name, argument in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"no {instruction}"
        return found[-1]


def container_settings(service: str) -> Settings:
    """The settings a service's container runs with (its compose environment, no .env)."""
    environment = {key: str(value) for key, value in SERVICES[service]["environment"].items()}
    return load_settings(env=environment, dotenv_path=None)


def volume_mounts(service: str) -> dict[str, tuple[str, str]]:
    """Target path -> (source, mode) of a service's short-syntax volumes."""
    mounts = {}
    for spec in SERVICES[service].get("volumes", []):
        source, target, *mode = spec.split(":")
        mounts[target] = (source, mode[0] if mode else "rw")
    return mounts


def nginx_block(opening: str) -> str:
    """The body of the first nginx block whose head matches the regex ``opening``."""
    head = re.search(opening + r"\s*\{", NGINX_NO_COMMENTS)
    assert head is not None, f"no block {opening!r}"
    depth = 0
    for index in range(head.end() - 1, len(NGINX_NO_COMMENTS)):
        depth += {"{": 1, "}": -1}.get(NGINX_NO_COMMENTS[index], 0)
        if depth == 0:
            return NGINX_NO_COMMENTS[head.end() : index]
    raise AssertionError(f"unbalanced block {opening!r}")


def seconds(duration: str) -> float:
    """An nginx or compose duration (``1h``, ``30s``, ``75``) in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", duration)
    assert match is not None, duration
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(match.group(1)) * units[match.group(2) or "s"]


def test_two_api_replicas_behind_the_proxy_which_alone_publishes_a_port() -> None:
    assert SERVICES["api"]["deploy"]["replicas"] == 2
    assert "container_name" not in SERVICES["api"]  # a fixed name would forbid replicas
    assert SERVICES["proxy"]["ports"] == ["8080:8080"]
    assert [name for name, service in SERVICES.items() if "ports" in service] == ["proxy"]
    mounts = volume_mounts("proxy")
    assert mounts["/etc/nginx/conf.d/default.conf"] == ("./deploy/nginx.conf", "ro")


def test_the_proxy_balances_over_the_api_service_by_dockers_dns() -> None:
    api_port = container_settings("api").api.port
    assert re.search(r"^\s*resolver 127\.0\.0\.11\b", NGINX_NO_COMMENTS, re.MULTILINE)
    upstream = re.search(r"set \$(\w+) http://([\w.-]+):(\d+);", NGINX_NO_COMMENTS)
    assert upstream is not None
    variable, host, port = upstream.groups()
    assert host == "api"
    assert int(port) == api_port == 8080
    assert f"{api_port}" in Dockerfile.read("Dockerfile.api").last("EXPOSE")
    passes = re.findall(r"proxy_pass ([^;]+);", NGINX_NO_COMMENTS)
    assert passes
    assert set(passes) == {f"${variable}"}
    assert re.search(r"^\s*listen 8080;", NGINX_NO_COMMENTS, re.MULTILINE)


def test_the_proxy_passes_websocket_upgrades_with_a_long_read_timeout() -> None:
    server = nginx_block(r"(?m)^server")
    assert "proxy_http_version 1.1;" in server
    assert "proxy_set_header Upgrade $http_upgrade;" in server
    assert "proxy_set_header Connection $connection_upgrade;" in server
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{\s*default upgrade;", NGINX)
    events = nginx_block(r"location = /v1/events")
    # nginx inherits proxy_set_header only into locations that set none of their own.
    assert "proxy_set_header" not in events
    assert "proxy_buffering off;" in events
    timeout = re.search(r"proxy_read_timeout (\w+);", events)
    assert timeout is not None
    heartbeat = container_settings("api").api.ws_heartbeat_interval
    assert seconds(timeout.group(1)) >= 3600 > 4 * heartbeat


def test_redis_keeps_an_append_only_file_on_a_named_volume() -> None:
    redis = SERVICES["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    source, mode = volume_mounts("redis")["/data"]
    assert source in COMPOSE["volumes"]
    assert mode == "rw"


@pytest.mark.parametrize("service", ["brain", "api"])
def test_brain_and_api_use_redis_and_share_the_sql_history(service: str) -> None:
    settings = container_settings(service)
    assert settings.store.backend == "redis"
    assert settings.secrets.redis_url is not None
    assert settings.secrets.redis_url.get().startswith("redis://redis:")
    # The SQLite history (relative to the image's WORKDIR) lies on the shared named volume.
    workdir = PurePosixPath(Dockerfile.read(BUILT[service]).last("WORKDIR"))
    history = workdir / settings.database.sqlite_path
    source, mode = volume_mounts(service)[str(history.parent)]
    assert source == "history"
    assert source in COMPOSE["volumes"]
    # Writable even for the API: WAL readers need the -shm file; the API opens it mode=ro.
    assert mode == "rw"
    env_file = SERVICES[service]["env_file"]
    assert env_file == [{"path": ".env", "required": False}]


def test_the_api_opens_the_history_read_only() -> None:
    settings = container_settings("api")
    engine = create_engine(database_url(settings), read_only=True)  # as api/runtime.py does
    try:
        assert engine.url.query == {"mode": "ro", "uri": "true"}
    finally:
        engine.sync_engine.dispose()


def test_start_order_waits_for_health() -> None:
    order = {"brain": "redis", "api": "brain", "proxy": "api"}
    for service, dependency in order.items():
        assert SERVICES[service]["depends_on"][dependency] == {"condition": "service_healthy"}
    for name in ("redis", "proxy", "postgres"):  # images of others: the check is here
        assert SERVICES[name]["healthcheck"]["test"][0] == "CMD"
    for service in ("brain", "api"):  # PostgreSQL only with its profile
        assert SERVICES[service]["depends_on"]["postgres"] == {
            "condition": "service_healthy",
            "required": False,
        }
    assert SERVICES["postgres"]["profiles"] == ["postgres"]
    assert SERVICES["brain"]["stop_grace_period"] == "30s"
    brain = container_settings("brain")
    assert seconds(SERVICES["brain"]["stop_grace_period"]) > brain.brain.shutdown_timeout


@pytest.mark.parametrize("name", sorted(BUILT.values()))
def test_images_run_as_a_non_root_user_with_a_healthcheck(name: str) -> None:
    dockerfile = Dockerfile.read(name)
    assert dockerfile.last("FROM").startswith("python:3.11-slim")
    user = dockerfile.last("USER")
    assert user not in {"root", "0"}
    assert not user.startswith("0:")
    instructions = [instruction for instruction, _ in dockerfile.instructions]
    assert instructions.index("USER") < instructions.index("CMD")
    healthcheck = dockerfile.last("HEALTHCHECK")
    assert " CMD " in f" {healthcheck} "
    command = dockerfile.last("CMD")
    if name == "Dockerfile.brain":
        assert '"tradingbrain", "health"' in healthcheck
        assert command == '["tradingbrain", "brain"]'
    else:
        assert "http://127.0.0.1:8080/healthz" in healthcheck
        assert command == '["tradingbrain", "api"]'


def test_env_example_lists_every_secret_with_a_comment() -> None:
    path = ROOT / ".env.example"
    names = {
        "API_KEY" if field.name == "api_keys" else field.name.upper()
        for field in dataclasses.fields(Secrets)
    }
    listed = dotenv_values(path)
    assert names <= set(listed)
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            above = lines[index - 1]
            assert above.startswith("#") or "=" in above, f"{line}: no comment above"
    # The key must never ship with a value.
    assert not listed["API_KEY"]
