"""The `alert` processing's part of the StreamingJob API (pure models): rules, and where the
alerts go.

```yaml
processing:
  type: alert
  alert:
    rules:
    - name: price-jump
      priceMove: {percent: 2, windowSeconds: 5}
    - name: block-trade
      when: m.type == "trade" && m.volume > 50000
      symbols: [AAPL, MSFT]
    stream: alerts
    webhooks:
    - url: http://alert-receiver.monitoring.svc:8080/hook
    - secret: {name: slack, key: url}
```

A rule's CEL is compiled by core/streams/alerts.py, which the controller runs on the spec
before it creates any consumer: a bad one fails the StreamingJob with its position.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from dataworks.api.common import DNS1123_LABEL
from dataworks.api.meta import Model


def webhook_env(i: int) -> str:
    """The consumers' environment variable holding the i-th webhook's URL from its Secret."""
    return f"DATAWORKS_WEBHOOK_{i}"


class PriceMove(Model):
    """A price move per symbol within a tumbling window."""

    percent: float = Field(gt=0, le=1000, description="The move, in % of the window's opening price.")
    window_seconds: float = Field(
        gt=0, le=86_400, description="The tumbling window, aligned on the messages' timestamps."
    )


class AlertRule(Model):
    """One rule: `when` (a CEL condition over the message `m`) or `priceMove`."""

    name: str = Field(pattern=DNS1123_LABEL, max_length=63, description="The alert's name, in each alert.")
    when: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description='A CEL condition over one message, the map m: m.volume > 50000 && m.exchange == "XNAS".',
    )
    price_move: PriceMove | None = Field(
        None, description="A price move of at least `percent` % within `windowSeconds`, per symbol."
    )
    symbols: list[str] | None = Field(
        None, min_length=1, max_length=10_000, description="Only these symbols (default: all)."
    )

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "has(self.when) != has(self.priceMove)",
            "message": "an alert rule has exactly one of when (a CEL condition) or priceMove",
        }
    ]

    @model_validator(mode="after")
    def _one(self) -> AlertRule:
        if (self.when is None) == (self.price_move is None):
            raise ValueError(f"rule {self.name}: give exactly one of when (a CEL condition) or priceMove")
        return self


class SecretKey(Model):
    name: str = Field(pattern=DNS1123_LABEL, description="The Secret, in the StreamingJob's namespace.")
    key: str = Field(min_length=1, description="The key holding the URL.")


class Webhook(Model):
    """An HTTP endpoint each batch's alerts are POSTed to, as {"alerts": [...]}."""

    url: str | None = Field(
        None, pattern=r"^https?://\S+$", description="The URL, when it holds no credential."
    )
    secret: SecretKey | None = Field(
        None, description="A Secret's key holding the URL, when it holds a token (Slack, PagerDuty)."
    )

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {"rule": "has(self.url) != has(self.secret)", "message": "a webhook has exactly one of url or secret"}
    ]

    @model_validator(mode="after")
    def _one(self) -> Webhook:
        if (self.url is None) == (self.secret is None):
            raise ValueError("a webhook has exactly one of url or secret (a Secret's key holding the URL)")
        return self


class AlertSpec(Model):
    """The rules, and where alerts go: a stream (or topic) and webhooks."""

    rules: list[AlertRule] = Field(min_length=1, max_length=100, description="The rules, each evaluated.")
    stream: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._:-]+$",
        max_length=200,
        description="The stream (Redis) or topic (Kafka) each alert is added to, on the source's broker, "
        "before the messages that raised it are acknowledged.",
    )
    webhooks: list[Webhook] = Field(
        default_factory=list, max_length=10, description="Where alerts are POSTed."
    )

    @model_validator(mode="after")
    def _distinct(self) -> AlertSpec:
        names = [r.name for r in self.rules]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"rule names must be distinct: {', '.join(dup)} repeated")
        return self
