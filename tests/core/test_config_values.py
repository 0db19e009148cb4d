"""Config values are checked when the file is read: a bad one names its key at init/status."""

from __future__ import annotations

import pytest

from broadcaster.config import AUDIO_FORMATS, DEFAULTS, SMS_BACKENDS, TTS_BACKENDS, VALUE_CHECKS, check_values


@pytest.mark.parametrize(("toml", "key", "hint"), [
    ('[broadcaster]\ntimezone = "Asia/Hanoi_City"\n', "broadcaster.timezone", "unknown time zone"),
    ('[sms]\nquiet_hours = "21h-7h"\n', "sms.quiet_hours", '"off"'),
    ("[webhook]\nport = 80800\n", "webhook.port", "1..65535"),
    ('[audio]\nformat = "ogg"\n', "audio.format", "mp3, wav"),
    ('[audio]\nbitrate = "64"\n', "audio.bitrate", '"64k"'),
    ("[sms]\nrate_per_second = -1\n", "sms.rate_per_second", "0..1000"),
    ('[audio]\ntts = ["gtts", "espeek"]\n', "audio.tts", "did you mean: espeak"),
    ("[audio]\ntts = []\n", "audio.tts", "at least one"),
    ('[sms]\nbackend = "twillio"\n', "sms.backend", "did you mean: twilio"),
    ("[retention]\nbulletins_days = 0\n", "retention.bulletins_days", "1..…"),
    ('[sms.twilio]\napi_base_url = "localhost:9000"\n', "sms.twilio.api_base_url", "http://"),
    ("[daemon]\nlease_seconds = 8\n", "daemon.lease_seconds", "twice daemon.heartbeat_seconds (5 s)"),
])
@pytest.mark.parametrize("command", [["init"], ["status"]])
def test_bad_value_is_named_at_init_and_status(run, isolated_home, toml, key, hint, command):
    (isolated_home / "broadcaster.toml").write_text(toml, encoding="utf-8")
    result = run(*command, ok=False)
    line = result.output.strip()
    assert len(line.splitlines()) == 1, line
    assert f"'{key}'" in line and hint in line and "broadcaster.toml" in line


def test_off_means_no_quiet_hours_and_defaults_pass(run, isolated_home):
    (isolated_home / "broadcaster.toml").write_text('[sms]\nquiet_hours = "off"\n', encoding="utf-8")
    run("init")
    check_values(DEFAULTS, "defaults")


def test_misspelt_key_is_named_with_the_closest_one(run, isolated_home):
    (isolated_home / "broadcaster.toml").write_text('[sms]\nquiet_hour = "off"\n', encoding="utf-8")
    result = run("init", ok=False)
    assert "unknown key 'sms.quiet_hour'" in result.output and "did you mean: quiet_hours" in result.output


def test_checked_keys_exist_and_names_match_the_backends():
    from broadcaster.audio.assemble import EXPORT_FORMATS
    from broadcaster.audio.tts import _FACTORIES
    from broadcaster.sms.backends import BACKENDS

    for dotted in VALUE_CHECKS:
        node = DEFAULTS
        for part in dotted.split("."):
            node = node[part]
    assert set(TTS_BACKENDS) == set(_FACTORIES)
    assert set(SMS_BACKENDS) == set(BACKENDS)
    assert set(AUDIO_FORMATS) == set(EXPORT_FORMATS)
