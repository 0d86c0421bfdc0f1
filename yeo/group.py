"""The base of every config group: a frozen pydantic model that refuses unknown keys and reports
a fault as one :class:`ConfigError` line naming ``group.key``. A leaf: pydantic and
:mod:`yeo.errors` only, so that every group's module can import it."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from yeo.errors import ConfigError


class Group(BaseModel):
    """One config group (or a part of one): frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def parse(cls, group: str, cfg: dict[str, Any] | None) -> Self:
        """``cfg`` validated as this group; a fault is a ConfigError naming ``group.key``."""
        try:
            return cls.model_validate(cfg or {})
        except ValidationError as e:
            unknown = sorted(
                ".".join(map(str, err["loc"]))
                for err in e.errors()
                if err["type"] == "extra_forbidden"
            )
            if unknown:
                raise ConfigError(f"{group}: unknown keys {unknown}") from None
            err = e.errors()[0]
            where = ".".join(map(str, (group, *err["loc"])))
            raise ConfigError(f"{where}: {err['msg']} (got {err.get('input')!r})") from None
