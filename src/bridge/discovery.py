"""Connecting to a tracker for `bridge discover`: from the config, or from flags before a config exists."""

from __future__ import annotations

import os

from bridge.config import BridgeConfig
from bridge.connector import Capability, Connector, ConnectorRegistry
from bridge.errors import UserError


def connect_for_discovery(
    tracker: str | None,
    config: BridgeConfig | None,
    *,
    kind: str | None = None,
    url: str | None = None,
    token_env: str | None = None,
    email_env: str | None = None,
    api_key_env: str | None = None,
) -> Connector:
    registry = ConnectorRegistry.default()
    if kind is None:
        if config is None or tracker is None:
            raise UserError(
                "name a configured tracker (bridge discover NAME) or give --kind, --url and --token-env"
            )
        settings = config.tracker(tracker)
        secrets = config.require_secrets(tracker)
        name = tracker
    else:
        if not url or not token_env:
            raise UserError(
                "--kind needs --url and --token-env "
                "(and --email-env for Jira Cloud, --api-key-env for Trello)"
            )
        model = registry.config_model(kind)
        given = {"token_env": token_env, "email_env": email_env, "api_key_env": api_key_env}
        values = {key: value for key, value in given.items() if value and key in model.model_fields}
        # Not validated: a mapping does not exist yet, which is what discovery helps write.
        fields: dict[str, object] = {
            "kind": kind,
            "url": url.rstrip("/"),
            "projects": [],
            "boards": [],
            **values,
        }
        settings = model.model_construct(**fields)  # type: ignore[arg-type]
        missing = [var for var in values.values() if not os.environ.get(var)]
        if missing:
            raise UserError(f"environment variable {', '.join(missing)} is not set")
        secrets = {key: os.environ[var] for key, var in values.items()}
        name = kind
    connector_class = registry.load(settings.kind)
    if Capability.DISCOVER not in connector_class.capabilities:
        raise UserError(f"the {settings.kind} connector cannot discover yet")
    return connector_class.open(name, settings.interactive(), secrets)
