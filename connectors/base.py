"""What every connector is: a config model and a ``collect`` function that returns inventory pieces.

Connectors read vendor data and turn it into ``auditor.model`` objects; they never score, render or
store anything. A connector that fails part-way raises :class:`SourceError` or returns a result with
``partial`` set, and the engine records the source status; it never lets one source stop the audit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from auditor.model import Account, ChangeEvent, PasswordPolicy

if TYPE_CHECKING:
    from connectors.preflight import AccessCheck

# TOML arrays arrive as lists; config models keep immutable tuples.
StrList = Annotated[tuple[str, ...], Field(strict=False)]


class CostSettings(BaseModel):
    """``[sources.cost]``: what an account of the source costs a month. The first rule that prices an account
    wins: its Entra licences (``per_sku``, when the source says which it holds), its kind (``per_kind``), then
    ``per_account_month``; an account none of them prices has an unknown price, never zero."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    per_account_month: float | None = Field(default=None, ge=0, strict=False)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")  # ISO 4217
    per_kind: dict[str, float] = Field(default_factory=dict, strict=False)  # "guest" = 0, "service" = 0, ...
    # Entra licences: skuPartNumber (or skuId) -> monthly price; licences not listed here cost nothing
    per_sku: dict[str, float] = Field(default_factory=dict, strict=False)

    @model_validator(mode="after")
    def _priced(self) -> CostSettings:
        from auditor.model import AccountKind

        if self.per_account_month is None and not self.per_kind and not self.per_sku:
            raise ValueError("set per_account_month, per_kind or per_sku")
        kinds = {k.value for k in AccountKind}
        for kind in self.per_kind:
            if kind not in kinds:
                raise ValueError(f"per_kind: unknown account kind {kind!r} (one of: {', '.join(sorted(kinds))})")
        for name, price in (*self.per_kind.items(), *self.per_sku.items()):
            if price < 0:
                raise ValueError(f"{name}: a price cannot be negative")
        return self


class SourceConfig(BaseModel):
    """Keys every ``[[sources]]`` entry has. Connector configs subclass this."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    type: str
    enabled: bool = True
    inactive_days: int | None = Field(default=None, ge=1, le=3650)  # overrides [audit] inactive_days
    cost: CostSettings | None = None  # [sources.cost]: what its accounts cost (auditor.cost)

    def insecure_settings(self) -> list[str]:
        """Loud warnings for settings that weaken security: shown whether or not the source could be read."""
        return []

    def secret_references(self) -> dict[str, str | Path]:
        """Configured secret keys -> variable name or path: every ``X_env``, and ``X_file`` where an ``X_env``
        exists too (a secret's two ways in; data files like ``users_file`` have no ``_env``). Checked by
        check-config without contacting anything."""
        fields = type(self).model_fields
        return {name: value for name in fields
                if (name.endswith("_env") or (name.endswith("_file") and f"{name[:-5]}_env" in fields))
                and (value := getattr(self, name)) is not None}

    @field_validator("*", mode="after")
    @classmethod
    def _config_paths(cls, value: Any, info: ValidationInfo) -> Any:
        """Paths in a config file may name ``${VARIABLE}``s (``${CREDENTIALS_DIRECTORY}`` under systemd), and
        relative ones mean "next to the config file", not "in the cwd"."""
        if not isinstance(value, Path):
            return value
        base = (info.context or {}).get("base_dir")
        return config_path(value, Path(base) if base is not None else None)


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def config_path(value: Path, base_dir: Path | None) -> Path:
    """A path as a config file gives it: each ``${NAME}`` replaced by that environment variable (unset or empty
    is an error, never a path with a hole in it), then made absolute against ``base_dir``. Only the braced form
    is read, so a ``$`` elsewhere in a file name stays as it is."""

    def substitute(match: re.Match[str]) -> str:
        variable = os.environ.get(match.group(1))
        if not variable:
            raise ValueError(f"environment variable {match.group(1)} (in {str(value)!r}) is not set or empty")
        return variable

    path = Path(_VARIABLE.sub(substitute, str(value)))
    return base_dir / path if base_dir is not None and not path.is_absolute() else path


NO_STATE: Mapping[str, str] = {}


@dataclass(frozen=True)
class CollectContext:
    """What the audit tells a connector: when it audits as of, how far back its change logs matter, and what
    the source's last complete read saved for this one (a delta link)."""

    as_of: datetime
    period_days: int = 30  # [audit] period_days
    previous_state: Mapping[str, str] = field(default_factory=dict)


class SourceError(Exception):
    """The source could not be read at all. The message is shown to the user: no secrets in it."""


class SourceUnreachable(SourceError):
    """The service was not reached (network, TLS): nothing was refused. check-access tells the two apart."""


@dataclass
class SourceResult:
    accounts: list[Account] = field(default_factory=list)
    policies: list[PasswordPolicy] = field(default_factory=list)
    change_events: list[ChangeEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Set when collection stopped part-way: what was read is kept, the source is marked partial.
    partial_error: str | None = None
    # Saved in history when the source was read in full, and handed back on the next run (delta links).
    state: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceType:
    name: str
    description: str
    config_model: type[SourceConfig]
    collect: Callable[[Any, CollectContext], SourceResult]
    # ``auditor check-access``: the smallest reads proving each permission the audit needs (connectors.preflight)
    check_access: Callable[[Any], list[AccessCheck]] | None = None
    # ``auditor permissions``: what to grant the audit's account, in the vendor's own terms
    permissions: tuple[str, ...] = ()
