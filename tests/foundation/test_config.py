"""Config loading: embedded defaults, the documented sample, every error path."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mailsuite import config
from mailsuite.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "etc" / "mailsuite.toml"


def test_embedded_defaults() -> None:
    c = config.load(None)
    assert c.server.hostname == "localhost"
    assert c.server.data_dir == "./mailsuite-data"
    assert c.listeners.smtp == "tcp:2525:interface=127.0.0.1"
    assert c.listeners.imaps == "tcp:2993:interface=127.0.0.1"
    assert c.smtp.max_message_size == 50 * 1024 * 1024
    assert c.smtp.max_recipients == 100
    assert c.source == ""


def test_sample_config_is_the_defaults() -> None:
    c = config.load(SAMPLE)
    assert dataclasses.replace(c, source="") == config.Config()


def test_sample_documents_every_key() -> None:
    text = SAMPLE.read_text()
    for section, cls in config.SECTIONS.items():
        assert re.search(rf"^\[{section}\]$", text, re.M), section
        for f in dataclasses.fields(cls):
            assert re.search(rf"^{f.name} = ", text, re.M), f"{section}.{f.name} undocumented"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[smtp]\nmax_recipients = 'ten'\n", "smtp.max_recipients: expected an integer >= 1"),
        ("[smtp]\nmax_recipients = 0\n", "smtp.max_recipients: expected an integer >= 1"),
        ("[smtp]\nmax_recipients = true\n", "smtp.max_recipients"),
        ("[smtp]\nmax_recipient = 5\n", "smtp.max_recipient: unknown key"),
        ("[smpt]\n", "[smpt]: unknown section"),
        ("smtp = 1\n", "[smtp]: expected a table"),
        ("[listeners]\nsmtp = 'bogus:1'\n", "listeners.smtp: expected a Twisted server endpoint"),
        ("[listeners]\nimap = 143\n", "listeners.imap"),
        ("[auth]\nallow_plaintext = 'yes'\n", "auth.allow_plaintext: expected true or false"),
        ("[tls]\nminimum_version = '1.1'\n", 'tls.minimum_version: expected "1.2" or "1.3"'),
        ("[queue]\nretry_schedule = []\n", "queue.retry_schedule"),
        ("[queue]\nretry_schedule = [1, 'x']\n", "queue.retry_schedule"),
        ("[server]\nhostname = ''\n", "server.hostname"),
        ("[smtp\n", "invalid TOML"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        config.load(p)
    msg = str(e.value)
    assert msg.startswith(str(p) + ":"), msg
    assert fragment in msg
    assert "\n" not in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "nope.toml")


def test_int_accepted_for_float(tmp_path: Path) -> None:
    c = config.load(write(tmp_path, "[smtp]\ncommand_timeout = 30\n"))
    assert c.smtp.command_timeout == 30.0 and isinstance(c.smtp.command_timeout, float)


def test_data_dir_override() -> None:
    assert config.Config().with_data_dir("/x").data_dir == Path("/x")
