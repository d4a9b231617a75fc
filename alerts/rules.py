"""Alert rule set: which detectors, at which thresholds, combine into red / yellow per signal.

The rule set is a YAML file (``config/alert_rules.yaml`` by default, ``settings.alerts.rules_file``
otherwise). It is validated once on load; every problem is reported with its location in the
file (``signals.ili.levels.red.when[1].p_below: ...``) so an epidemiologist editing the file can
fix it without reading code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from affectwatch.settings import Settings, get_settings
from analytics.detectors import registry

LEVELS = ("yellow", "red")  # notifiable levels, in increasing order of severity
LEVEL_RANK = {None: 0, "none": 0, "insufficient_data": 0, "yellow": 1, "red": 2}



class RuleError(ValueError):
    """The rule file is missing, not YAML, or fails validation; the message names each bad entry."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorSpec(_Model):
    """One detector run on a signal's series; ``name`` is how conditions refer to it."""

    name: str
    method: str  # a name from analytics/detectors/registry.py
    params: dict = Field(default_factory=dict)  # over the registry's defaults for the signal's frequency
    # a detector used outside the frequencies the registry lists for it must say so explicitly
    allow_off_frequency: bool = False
    # forecast-exceedance only: which forecast target and horizon, and the region threshold.
    target: str | None = None
    horizon: int = 1
    threshold_quantile: float | None = Field(default=None, gt=0, lt=1)  # of the region's own history
    threshold_value: float | None = None
    # forecast-exceedance: models to use, in order of preference (first one present in the newest run)
    models: list[str] = Field(default_factory=lambda: ["ensemble", "glm", "baseline"], min_length=1)

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method not in registry.REGISTRY:
            raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(registry.ALL_METHODS)}")
        return method

    @model_validator(mode="after")
    def _exceedance_fields(self):
        if self.method == "forecast-exceedance":
            if not self.target:
                raise ValueError("forecast-exceedance needs `target` (e.g. 'wk inc flu hosp')")
            if (self.threshold_quantile is None) == (self.threshold_value is None):
                raise ValueError("forecast-exceedance needs exactly one of `threshold_quantile` or `threshold_value`")
        elif self.target or self.threshold_quantile is not None or self.threshold_value is not None:
            raise ValueError(f"`target`/`threshold_*` only apply to forecast-exceedance, not {self.method}")
        return self


class Condition(_Model):
    """A test on one detector's output for the current period. Exactly one criterion."""

    detector: str
    p_below: float | None = Field(default=None, gt=0, lt=1)
    alarm: bool | None = None
    probability_above: float | None = Field(default=None, ge=0, lt=1)
    statistic_above: float | None = None

    @model_validator(mode="after")
    def _one_criterion(self):
        set_ = [k for k in ("p_below", "alarm", "probability_above", "statistic_above") if getattr(self, k) is not None]
        if len(set_) != 1:
            raise ValueError(
                f"condition on detector {self.detector!r} needs exactly one of p_below, alarm, probability_above, "
                f"statistic_above (got {set_ or 'none'})"
            )
        if self.alarm is False:
            raise ValueError(f"condition on detector {self.detector!r}: `alarm: false` never raises a level")
        return self


class LevelRule(_Model):
    require: int = Field(default=1, ge=1)  # how many of the conditions must hold
    when: list[Condition] = Field(min_length=1)

    @model_validator(mode="after")
    def _require_le_conditions(self):
        if self.require > len(self.when):
            raise ValueError(f"require={self.require} but only {len(self.when)} condition(s) listed")
        return self


class SignalRule(_Model):
    """How one signal (a syndrome series or the affect distress share) is turned into levels."""

    description: str = ""
    source: Literal["symptom_reports", "affect_windows"]
    syndrome: str | None = None  # symptom_reports only
    measure: Literal["count", "percent"] = "count"  # percent = 100 * count / denominator
    frequency: Literal["daily", "weekly"] = "weekly"
    affect_field: Literal["distress_share", "arousal_mean", "valence_mean"] = "distress_share"
    period: int | None = None  # seasonal period for the detectors; default 52 weekly, 7 daily
    min_history: int = Field(default=8, ge=2)  # periods of history needed before any alert
    max_lag_periods: int = Field(default=2, ge=0)  # a region whose data stops earlier than this abstains
    provisional_days: int = Field(default=14, ge=0)  # data ending within this many days may still be revised
    resolve_after: int = Field(default=2, ge=1)  # consecutive quiet periods that resolve an alert
    cooldown_hours: float | None = Field(default=None, ge=0)  # default: settings.alerts.cooldown_hours
    # affect only: minimums that may only TIGHTEN settings.privacy.* (checked by parse_rules)
    min_devices: int | None = Field(default=None, ge=1)
    min_observations: int | None = Field(default=None, ge=1)
    min_quality: float | None = Field(default=None, ge=0, le=1)
    detectors: list[DetectorSpec] = Field(min_length=1)
    levels: dict[Literal["red", "yellow"], LevelRule]

    @model_validator(mode="after")
    def _references(self):
        names = [d.name for d in self.detectors]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"detector names must be unique; repeated: {dup}")
        for level, rule in self.levels.items():
            for c in rule.when:
                if c.detector not in names:
                    raise ValueError(f"levels.{level}: unknown detector {c.detector!r}; defined: {names}")
        if self.source == "symptom_reports" and not self.syndrome:
            raise ValueError("source symptom_reports needs `syndrome` (e.g. ili, flu_admissions)")
        if self.source == "affect_windows" and any(d.method not in ("affect-anomaly",) for d in self.detectors):
            bad = [d.name for d in self.detectors if d.method != "affect-anomaly"]
            raise ValueError(f"affect_windows signals take only affect-anomaly detectors; bad: {bad}")
        if self.source == "symptom_reports" and any(d.method == "affect-anomaly" for d in self.detectors):
            raise ValueError("affect-anomaly runs only on source affect_windows")
        if not self.levels:
            raise ValueError("at least one level (red or yellow) is needed")
        off = [f"{d.name} ({d.method}: {', '.join(registry.get(d.method).frequencies)})" for d in self.detectors
               if self.frequency not in registry.get(d.method).frequencies and not d.allow_off_frequency]
        if off:
            raise ValueError(
                f"detector(s) not suited to {self.frequency} data: {off}; use one of "
                f"{list(registry.for_frequency(self.frequency))} or set `allow_off_frequency: true` on the detector")
        return self

    def minimums(self, privacy) -> dict:
        """Effective affect minimums: the rule's own where set (never below ``privacy``), else the settings'."""
        return {
            "min_devices": max(self.min_devices or 0, privacy.min_devices),
            "min_observations": max(self.min_observations or 0, privacy.k_min),
            "min_quality": max(self.min_quality if self.min_quality is not None else 0.0, privacy.min_quality),
        }

    def detector_params(self, spec: DetectorSpec) -> dict:
        """The registry's default parameters for this signal's frequency, overridden by the rule's ``params``."""
        return registry.get(spec.method).params(self.frequency, spec.params)

    @property
    def season_period(self) -> int:
        return self.period or (52 if self.frequency == "weekly" else 7)


class RuleSet(_Model):
    version: Literal[1]
    signals: dict[str, SignalRule] = Field(min_length=1)


def _format_errors(exc: ValidationError, path: Path) -> str:
    lines = [f"invalid alert rules in {path}:"]
    for err in exc.errors():
        loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
        got = err.get("input")
        got_txt = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  - {loc or '<top>'}: {err['msg']}{got_txt}")
    return "\n".join(lines)


def _loosened(rules: RuleSet, privacy) -> list[str]:
    """Every affect minimum of a rule that is below the privacy settings (rules may only tighten them)."""
    floors = {"min_devices": privacy.min_devices, "min_observations": privacy.k_min, "min_quality": privacy.min_quality}
    bad = []
    for name, rule in rules.signals.items():
        for field, floor in floors.items():
            value = getattr(rule, field)
            if value is not None and value < floor:
                bad.append(f"  - signals.{name}.{field}: {value} is below the privacy minimum {floor} "
                           f"(settings.privacy); alert rules may only tighten it")
    return bad


def parse_rules(data: object, path: Path | str = "<string>", settings: Settings | None = None) -> RuleSet:
    """Validate an already-parsed YAML document; raise RuleError naming every bad entry."""
    path = Path(path)
    if not isinstance(data, dict):
        raise RuleError(f"invalid alert rules in {path}: the top level must be a mapping with `version` and `signals`")
    try:
        rules = RuleSet.model_validate(data)
    except ValidationError as exc:
        raise RuleError(_format_errors(exc, path)) from None
    bad = _loosened(rules, (settings or get_settings()).privacy)
    if bad:
        raise RuleError("\n".join([f"invalid alert rules in {path}:", *bad]))
    return rules


def load_rules(path: Path | str | None = None, settings: Settings | None = None) -> RuleSet:
    """Read and validate the rule file (default ``settings.rules_file``)."""
    p = Path(path) if path else (settings or get_settings()).rules_file
    if not p.exists():
        raise RuleError(f"alert rule file not found: {p} (set AFFECTWATCH_ALERTS__RULES_FILE)")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise RuleError(f"alert rule file {p} is not valid YAML: {exc}") from None
    return parse_rules(data, p, settings)
