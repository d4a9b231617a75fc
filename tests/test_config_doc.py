"""The documented example env file lists every setting (generated from the Settings declaration)."""
from affectwatch.config_doc import render
from affectwatch.settings import REPO_ROOT, Settings


def test_example_env_is_up_to_date():
    committed = (REPO_ROOT / "config" / "affectwatch.example.env").read_text()
    assert committed == render(), "run: affectwatch config-example > config/affectwatch.example.env"


def test_every_setting_is_documented():
    text = render()
    for name, field in Settings.model_fields.items():
        ann = field.annotation
        if hasattr(ann, "model_fields"):
            for sub in ann.model_fields:
                assert f"AFFECTWATCH_{name.upper()}__{sub.upper()}=" in text
        else:
            assert f"AFFECTWATCH_{name.upper()}=" in text


def test_nested_environment_variables_override(monkeypatch):
    monkeypatch.setenv("AFFECTWATCH_KAFKA__BOOTSTRAP_SERVERS", "10.0.0.1:9093,10.0.0.2:9093")
    monkeypatch.setenv("AFFECTWATCH_PRIVACY__K_MIN", "15")
    s = Settings()
    assert s.kafka.client_kwargs()["bootstrap_servers"] == ["10.0.0.1:9093", "10.0.0.2:9093"]
    assert s.privacy.k_min == 15
