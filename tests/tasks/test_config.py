import pytest

from corpusclean.tasks.config import Config, ConfigError, config_to_toml, load_config


def test_defaults_without_a_file():
    cfg = load_config()
    assert cfg.dedup.threshold == 0.8 and cfg.dedup.ngram == 5
    assert cfg.read.text_field == "text"


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[dedup]\nthreshold = 0.9\n[read]\ntext_field = "body"\n[boilerplate]\nextra_rule_files = ["mine.toml"]\n')
    (tmp_path / "mine.toml").write_text("# a rule pack with no rules yet\n")
    cfg = load_config(path, ["dedup.threshold=0.85", "run.workers=3"])
    assert cfg.dedup.threshold == 0.85
    assert cfg.read.text_field == "body"
    assert cfg.run.workers == 3
    assert cfg.boilerplate.extra_rule_files == [(tmp_path / "mine.toml").resolve()]


@pytest.mark.parametrize(
    "content, overrides, message",
    [
        ("[dedup]\nthreshhold = 0.9\n", [], "dedup.threshhold: unknown option"),
        ("[dedup]\nthreshold = 2\n", [], "dedup.threshold"),
        ("not toml [", [], "not valid TOML"),
        ("", ["dedup.threshold"], "not of the form"),
        ("", ["dedup.bands=4"], "set both dedup.bands and dedup.rows"),
    ],
)
def test_mistakes_are_one_readable_line(tmp_path, content, overrides, message):
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(__import__("pathlib").Path("/nonexistent/c.toml"))


def test_rendered_toml_round_trips(tmp_path):
    cfg = load_config(None, ["dedup.threshold=0.7"])
    path = tmp_path / "out.toml"
    path.write_text(config_to_toml(cfg))
    assert load_config(path) == cfg
    assert Config() == load_config()


def test_rule_packs_are_checked_when_the_config_loads(tmp_path):
    """An unknown pack, a missing rule file or a bad pattern is one ConfigError before any work."""
    with pytest.raises(ConfigError, match="unknown rule pack 'xx'"):
        load_config(None, ['boilerplate.rule_packs=["common", "xx"]'])
    with pytest.raises(ConfigError, match="unknown rule pack"):
        load_config(None, ['boilerplate.rule_packs=["../rules/common"]'])
    with pytest.raises(ConfigError, match="not found"):
        load_config(None, [f'boilerplate.extra_rule_files=["{tmp_path / "absent.toml"}"]'])
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nreason = "advert"\npattern = "(unclosed"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="bad regex"):
        load_config(None, [f'boilerplate.extra_rule_files=["{bad}"]'])
    # a disabled stage loads no rules, so its settings are not checked
    assert not load_config(None, ["boilerplate.enabled=false", 'boilerplate.rule_packs=["xx"]']).boilerplate.enabled
