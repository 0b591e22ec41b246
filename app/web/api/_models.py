"""What API models share: inputs refuse unknown fields and overlong strings; lists come wrapped."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=5000)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)
