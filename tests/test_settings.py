"""The settings object: every PATCHLINE_* variable typed, checked once, and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from patchline.errors import ConfigError
from patchline.settings import Settings, markdown_rows, variable_name

README = Path(__file__).parent.parent / "README.md"

BAD_VALUES = [
    # numbers
    ("PATCHLINE_PORT", "abc", "valid integer"),
    ("PATCHLINE_PORT", "70000", "less than or equal to 65535"),
    ("PATCHLINE_API_MAX_BODY_BYTES", "-1", "greater than or equal to 1"),
    ("PATCHLINE_API_REQUESTS_PER_MINUTE_PER_TOKEN", "1.5", "valid integer"),
    ("PATCHLINE_KEY_KDF_LOG2N", "9", "greater than or equal to 10"),
    ("PATCHLINE_CREDENTIAL_RECHECK_SECONDS", "soon", "valid number"),
    ("PATCHLINE_CREDENTIAL_RECHECK_SECONDS", "nan", "finite number"),
    # URLs
    ("PATCHLINE_PUBLIC_URL", "localhost:8000", "not a http/https URL"),
    ("PATCHLINE_PUBLIC_URL", "http://:8000", "has no host"),
    ("PATCHLINE_PUBLIC_URL", "http://example.org:port", "port that is not a number"),
    ("PATCHLINE_DATABASE_URL", "not a url", "not a database URL"),
    # lists
    ("PATCHLINE_MIRRORS", "https://a.example,ftp://b.example", "'ftp://b.example' is not"),
    # booleans
    ("PATCHLINE_SERVE_REPOSITORY", "maybe", "valid boolean"),
    # text
    ("PATCHLINE_ENROLLMENT_TOKEN", "short", "at least 16 characters"),
]


@pytest.mark.parametrize(("variable", "value", "what"), BAD_VALUES)
def test_an_invalid_value_is_a_config_error_naming_the_variable(
    variable: str, value: str, what: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert f"{variable}: " in raised.value.message
    assert what in raised.value.message
    assert raised.value.exit_code == 3
    assert raised.value.hint


def test_every_invalid_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"PATCHLINE_PORT": "abc", "PATCHLINE_SERVE_REPOSITORY": "maybe"})
    assert "PATCHLINE_PORT" in raised.value.message
    assert "PATCHLINE_SERVE_REPOSITORY" in raised.value.message


def test_secrets_are_not_repeated_in_errors_or_the_repr() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(
            {
                "PATCHLINE_ENROLLMENT_TOKEN": "hunter2-secret",
                "PATCHLINE_DATABASE_URL": "postgresql://u:pa55word@db:notaport/x",
            }
        )
    assert "hunter2" not in str(raised.value)
    assert "pa55word" not in str(raised.value)
    settings = Settings.from_env({"PATCHLINE_ENROLLMENT_TOKEN": "a-fleet-token-of-some-length"})
    assert "a-fleet-token" not in repr(settings)
    assert settings.enrollment_token is not None
    assert settings.enrollment_token.get_secret_value() == "a-fleet-token-of-some-length"


def test_values_are_typed_and_only_the_mapping_given_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATCHLINE_PORT", "abc")  # not looked at
    settings = Settings.from_env(
        {
            "PATCHLINE_HOME": "/srv/ota",
            "PATCHLINE_PORT": "9000",
            "PATCHLINE_MIRRORS": " https://a.example/ota/ ,, file:///media/card ",
            "PATCHLINE_SERVE_REPOSITORY": "false",
            "PATCHLINE_CREDENTIAL_RECHECK_SECONDS": "0",
            "PATCHLINE_PUBLIC_URL": "",  # empty: unset
            "PATCHLINE_PASSPHRASE_ROOT": "not a setting",
            "PATCHLINE_TEST_DATABASE_URL": "not a setting either",
        }
    )
    assert settings.home == Path("/srv/ota")
    assert settings.port == 9000
    assert settings.mirrors == ("https://a.example/ota", "file:///media/card")
    assert settings.serve_repository is False
    assert settings.credential_recheck_seconds == 0
    assert settings.public_url is None
    assert settings.server_database_url() == "sqlite:////srv/ota/patchline.db"


def test_server_defaults_follow_host_port_and_serve_repository() -> None:
    settings = Settings.from_env({"PATCHLINE_HOST": "10.0.0.5", "PATCHLINE_PORT": "8443"})
    assert settings.server_public_url() == "http://10.0.0.5:8443"
    assert settings.server_mirrors() == ("http://10.0.0.5:8443/repository",)
    public = Settings.from_env({"PATCHLINE_PUBLIC_URL": "https://ota.example/"})
    assert public.server_mirrors() == ("https://ota.example/repository",)
    assert Settings.from_env({"PATCHLINE_SERVE_REPOSITORY": "0"}).server_mirrors() == ()


def test_overrides_win_over_the_environment_and_are_checked() -> None:
    settings = Settings.from_env({"PATCHLINE_PORT": "9000"}, port=9100)
    assert settings.port == 9100
    with pytest.raises(ConfigError, match="PATCHLINE_PORT"):
        Settings.from_env({}, port=0)


def _readme_settings_rows() -> list[str]:
    text = README.read_text()
    section = text[text.index("### Settings\n") :]
    section = section[: section.index("\n## ")]
    return [line for line in section.splitlines() if line.startswith("| `PATCHLINE_")]


def test_readme_settings_table_has_a_row_for_every_setting() -> None:
    rows = _readme_settings_rows()
    documented = {re.match(r"\| `([A-Z0-9_]+)`", row).group(1) for row in rows}  # type: ignore[union-attr]
    variables = {variable_name(name) for name in Settings.model_fields}
    assert variables - documented == set(), "missing from README.md's Settings table"
    assert documented - variables == set(), "in README.md's Settings table but not a setting"


def test_readme_settings_rows_say_what_the_settings_say() -> None:
    rows = _readme_settings_rows()
    for row in markdown_rows():
        assert row in rows, f"README.md's Settings table should have:\n{row}"


def test_replace_keeps_the_rest_and_checks_the_change() -> None:
    settings = Settings.from_env(
        {
            "PATCHLINE_ENROLLMENT_TOKEN": "a-fleet-token-of-some-length",
            "PATCHLINE_MIRRORS": "https://m",
        }
    )
    moved = settings.replace(port=9200, home=Path("/srv/ota"))
    assert (moved.port, moved.home, moved.mirrors) == (9200, Path("/srv/ota"), ("https://m",))
    assert moved.enrollment_token == settings.enrollment_token
    with pytest.raises(ConfigError, match="PATCHLINE_PORT"):
        settings.replace(port=-5)
