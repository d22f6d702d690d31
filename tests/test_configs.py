import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from tests.conftest import compose

CONF = Path(__file__).resolve().parents[1] / "conf"
REQUIRED = {
    "text": [
        "data.train_prefix=a",
        "data.validation_prefix=b",
        "data.test_prefix=c",
        "data.source_language=en",
        "data.target_language=de",
    ],
    "tfds": [
        "data.name=wmt14_translate/de-en",
        "data.source_language=de",
        "data.target_language=en",
    ],
}


def _options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["data", "model", "trainer", "decode"])
def test_every_option_of_every_group_composes(group):
    for option in _options(group):
        cfg = compose([f"{group}={option}", *REQUIRED.get(option, [])])
        section = dataclasses.asdict(getattr(cfg, group))
        missing = [k for k, v in section.items() if v == "???"]
        assert not missing, (group, option, missing)


def test_default_is_the_numbers_task():
    cfg = compose()
    assert cfg.data.source == "numbers" and cfg.data.source_language == "de"
    assert cfg.model.attention == "general"


def test_wrongly_typed_override_is_rejected_naming_the_key():
    with pytest.raises((ValidationError, ConfigCompositionException), match="units"):
        compose(["model.units=abc"])


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigCompositionException, match="unitz"):
        compose(["model.unitz=3"])


def test_decode_parallel_batches_below_one_is_refused_by_name():
    from seq2seq.training.validation import validate

    assert compose([]).decode.parallel_batches == 2
    with pytest.raises(ValueError, match=r"^decode.parallel_batches=0: must be at least 1$"):
        validate(compose(["decode.parallel_batches=0"]))


def test_the_command_line_defaults_are_the_decode_config_defaults():
    from seq2seq import cli

    decode = compose([]).decode
    assert cli.defaults() == decode


def _schema_keys(node, prefix=""):
    for item in dataclasses.fields(node):
        value = getattr(node, item.name)
        if dataclasses.is_dataclass(value):
            yield from _schema_keys(value, f"{prefix}{item.name}.")
        else:
            yield f"{prefix}{item.name}"


def test_the_configuration_reference_is_current_and_names_every_key():
    from tests.conftest import REPO

    script = REPO / "scripts" / "config_reference.py"
    assert subprocess.run([sys.executable, str(script), "--check"]).returncode == 0
    reference = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in _schema_keys(compose([])) if f"`{key}`" not in reference]
    assert not missing
