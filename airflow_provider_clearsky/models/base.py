"""Base classes for the API's request and response models.

The API speaks PascalCase JSON. Responses are parsed whatever the key casing (older docs show camelCase)
and unknown fields are kept; requests are sent with the exact PascalCase keys, nulls included.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_pascal

from airflow_provider_clearsky.exceptions import InvalidRequestError


def _key(name: str) -> str:
    return name.replace("_", "").lower()


@cache
def _canonical_keys(model: type[BaseModel]) -> dict[str, str]:
    """Map a casing-free spelling of each field (alias or name) to the alias pydantic expects."""
    keys: dict[str, str] = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        keys[_key(name)] = alias
        keys[_key(alias)] = alias
        if isinstance(field.validation_alias, AliasChoices):
            for choice in field.validation_alias.choices:
                if isinstance(choice, str):
                    keys[_key(choice)] = choice
    return keys


class _ApiModel(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _accept_any_key_casing(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        canonical = _canonical_keys(cls)
        return {canonical.get(_key(k), k) if isinstance(k, str) else k: v for k, v in data.items()}


class ApiResponse(_ApiModel):
    """A model of something the API returns: tolerant of casing, keeps unknown fields."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="allow", defer_build=True)


class ApiRequest(_ApiModel):
    """A model of something sent to the API, validated in full before any request is made.

    Construction raises :class:`InvalidRequestError` (a ``ValueError``) that names each offending field
    and says how to fix it.
    """

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="forbid", validate_default=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise invalid_request(type(self).__name__, error) from None

    def to_payload(self) -> dict[str, Any]:
        """The JSON body, with the API's exact keys and explicit nulls."""
        return self.model_dump(mode="json", by_alias=True)


def invalid_request(model_name: str, error: ValidationError) -> InvalidRequestError:
    """Turn pydantic's report into one error naming every field and its fix."""
    field_errors: dict[str, list[str]] = {}
    for item in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in item["loc"]) or "(request)"
        message = item["msg"].removeprefix("Value error, ")
        field_errors.setdefault(location, []).append(message)
    return InvalidRequestError(f"invalid {model_name}", field_errors=field_errors)
