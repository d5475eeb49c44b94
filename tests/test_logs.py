"""Process logging: one UTC line per record, secrets redacted, idempotent setup."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from shared.logs import SecretRedactionFilter, configure_logging, secret_values
from shared.settings import Secret, Secrets

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\S+) (\S+) (.*)$")

SECRETS = Secrets(
    api_keys=(Secret("api-key-first"), Secret("api-key-second")),
    redis_url=Secret("redis://:redis%2Fpass@cache:6379/0"),
    database_url=Secret("postgresql+asyncpg://tb:db-password@db:5432/tb"),
    telegram_bot_token=Secret("123:bot-token"),
    telegram_chat_id=None,
    anthropic_api_key=Secret("sk-ant-value"),
)


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def logged_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_one_line_per_record_utc_with_z(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info")
    logging.getLogger("brain.risk").warning("daily loss %s reached", "limit")
    logging.getLogger("brain.risk").debug("not shown at INFO")
    lines = logged_lines(capsys)
    assert len(lines) == 1
    match = LINE.match(lines[0])
    assert match is not None, lines[0]
    assert match.groups() == ("brain.risk", "WARNING", "daily loss limit reached")


def test_multi_line_message_and_traceback_stay_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("api").exception("first\nsecond")
    lines = logged_lines(capsys)
    assert len(lines) == 1
    assert "first\\nsecond" in lines[0]
    assert "RuntimeError: boom" in lines[0]


def test_secret_in_message_and_args_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(secrets=SECRETS)
    log = logging.getLogger("brain")
    log.info("key api-key-first in the message")
    log.info("token=%s url=%s", "123:bot-token", "postgresql+asyncpg://tb:db-password@db:5432/tb")
    log.info("bare password %r and %s", "db-password", "redis/pass")
    log.info("dict arg %(key)s", {"key": "api-key-second"})
    output = "\n".join(logged_lines(capsys))
    for secret in ("api-key-first", "api-key-second", "bot-token", "db-password", "redis/pass"):
        assert secret not in output
    assert "key *** in the message" in output
    assert "token=*** url=***" in output
    assert "bare password '***' and ***" in output
    assert "dict arg ***" in output


def test_secret_in_traceback_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(secrets=SECRETS)
    try:
        raise ConnectionError("cannot reach redis://:redis%2Fpass@cache:6379/0")
    except ConnectionError:
        logging.getLogger("brain").exception("store down")
    output = "\n".join(logged_lines(capsys))
    assert "redis%2Fpass" not in output
    assert "cannot reach ***" in output


def test_calling_twice_does_not_duplicate_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    before = len(logging.getLogger().handlers)
    configure_logging()
    configure_logging(secrets=SECRETS)
    assert len(logging.getLogger().handlers) == before + 1
    logging.getLogger("x").warning("api-key-first once")
    assert len(logged_lines(capsys)) == 1


def test_second_call_replaces_level_and_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("ERROR")
    configure_logging("INFO", secrets=SECRETS)
    logging.getLogger("x").info("api-key-first")
    lines = logged_lines(capsys)
    assert len(lines) == 1
    assert lines[0].endswith("x INFO ***")


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD")


def test_secret_values_cover_urls_and_their_passwords() -> None:
    values = set(secret_values(SECRETS))
    assert {"api-key-first", "api-key-second", "123:bot-token", "sk-ant-value"} <= values
    assert {"redis://:redis%2Fpass@cache:6379/0", "redis%2Fpass", "redis/pass"} <= values
    assert {"postgresql+asyncpg://tb:db-password@db:5432/tb", "db-password"} <= values


def test_filter_without_secrets_leaves_records_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s", ("b",), None)
    assert SecretRedactionFilter([]).filter(record)
    assert (record.msg, record.args) == ("a %s", ("b",))


def test_filter_replaces_longest_value_first() -> None:
    redaction = SecretRedactionFilter(["pw", "redis://:pw@host"])
    assert redaction.redact("url redis://:pw@host and pw") == "url *** and ***"
