"""Who may call the API: ``[api] auth_strategy`` and the policy rules.

* ``keystone``: keystonemiddleware validates the ``X-Auth-Token`` of every
  request against Keystone (its options in ``[keystone_authtoken]``, as in
  every OpenStack service), then oslo.policy decides from the token's roles.
* ``token``: one shared token in a file (small sites); it may do everything.
* ``noauth``: no check at all; the server refuses it unless the API listens
  on a loopback address only (config.py).

Routes marked ``auth=False`` (``/``, ``/healthz`` and ``/readyz``, for load
balancers) are always open; ``/metrics`` is open too with ``[api] metrics_open
= true`` (a Prometheus that scrapes without a token). Policy action names
follow Congress's ``<verb>_<collection>`` (``get_policies``, ``create_rules``,
``delete_data-sources``; a POST action on an element is
``<action>_<collection>``, e.g. ``simulate_policies``). The
defaults, Congress's base rules with reads opened to readers: reads and
simulate need ``rule:reader`` (role reader, member or admin), everything else
``rule:admin_only`` (role admin). A policy file (``[oslo_policy]
policy_file``, YAML or JSON) overrides any of them.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from typing import Any

from flask import Flask, request

from congress_ha.api import routes
from congress_ha.api.http import error_response

LOG = logging.getLogger(__name__)

_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}
READS = ("get", "simulate")


def action_name(route: routes.Route, action: str | None = None) -> str:
    """Congress's policy action for a route: ``<verb>_<collection>``."""
    collection = [s for s in route.path.split("/") if s and not s.startswith("{")][-1]
    return f"{action or _VERBS[route.method]}_{collection}"


def actions() -> dict[str, str]:
    """Every policy action of the API, with its default rule."""
    out: dict[str, str] = {}
    for route in routes.ROUTES:
        if not route.auth:
            continue
        for name in ([a.name for a in route.actions] or [None]):
            act = action_name(route, name)
            out[act] = "rule:reader" if act.split("_", 1)[0] in READS else "rule:admin_only"
    return out


def rule_defaults() -> list:
    from oslo_policy import policy

    base = [
        policy.RuleDefault("context_is_admin", "role:admin"),
        policy.RuleDefault("admin_only", "rule:context_is_admin"),
        policy.RuleDefault("reader", "role:reader or role:member or rule:admin_only",
                           description="Who may read: reader, member or admin."),
        policy.RuleDefault("default", "rule:admin_only",
                           description="Any action without a rule of its own."),
    ]
    return base + [policy.RuleDefault(name, check) for name, check in actions().items()]


class TokenFile:
    """The token of auth_strategy = token, re-read when the file changes."""

    def __init__(self, path: str):
        self.path = path
        self.stamp: tuple[int, int] | None = None
        self.token = b""
        self.load()

    def load(self) -> bytes:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self.stamp:
                with open(self.path, "rb") as fh:
                    token = fh.read().strip()
                if not token:
                    if self.stamp is None:
                        raise ValueError(f"[api] token_file {self.path} is empty; write "
                                         "the API token into it")
                    # Emptied while running (a rewrite in progress, or a mistake):
                    # keep the last good token rather than fail every request.
                    LOG.warning("[api] token_file %s is empty; the previous token stays "
                                "in use", self.path)
                    return self.token
                self.token, self.stamp = token, stamp
        except OSError as exc:
            if self.stamp is None:
                raise ValueError(f"[api] token_file {self.path} cannot be read: "
                                 f"{exc.strerror}") from None
            # keep the last good token while the file is being replaced
        return self.token

    def matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.load())


METRICS = routes.BY_ENDPOINT["GET /metrics"]


def _opener(settings: Any):
    """Which routes are open to all: ``auth=False`` ones, and /metrics if the
    options say so. An unknown path needs auth too, so that it answers 401, not
    404, and tells nothing about the routes."""
    metrics_open = bool(getattr(settings.api, "metrics_open", False))

    def is_open(route: routes.Route | None) -> bool:
        return route is not None and (not route.auth or (metrics_open and route is METRICS))
    return is_open


def _action_of(route: routes.Route) -> str:
    name = request.args.get("action") if route.actions else None
    known = {a.name for a in route.actions}
    return action_name(route, name if name in known else None)


def install(app: Flask, settings: Any, oslo_conf=None) -> str:
    """Put the configured strategy in front of ``app``; returns its name.

    ``oslo_conf``: an oslo.config ConfigOpts over the service's file (for
    keystonemiddleware and oslo.policy); built here when not given.
    """
    strategy = getattr(settings.api, "auth_strategy", "noauth") or "noauth"
    is_open = _opener(settings)
    if strategy == "token":
        token = TokenFile(settings.api.token_file)

        @app.before_request
        def check_token():
            if is_open(routes.BY_ENDPOINT.get(request.endpoint or "")):
                return None
            if not token.matches(request.headers.get("X-Auth-Token")):
                return error_response(401, "authentication required: send the API token "
                                           "in the X-Auth-Token header")
            return None
    elif strategy == "keystone":
        _install_keystone(app, settings, oslo_conf, is_open)
    return strategy


def _install_keystone(app: Flask, settings: Any, conf, is_open) -> None:
    from keystonemiddleware import auth_token
    from oslo_policy import policy

    if conf is None:
        from congress_ha.config import oslo_conf

        conf = oslo_conf(settings)
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(rule_defaults())
    enforcer.load_rules()  # a broken policy file fails the start, not a request
    # delay_auth_decision: the middleware marks a request instead of refusing
    # it, so that the open routes stay open; the check below refuses.
    middleware = auth_token.AuthProtocol(app.wsgi_app, {"oslo_config_config": conf,
                                                        "delay_auth_decision": "true"})
    app.wsgi_app = middleware  # type: ignore[method-assign]
    www = conf.keystone_authtoken.www_authenticate_uri or ""

    @app.before_request
    def check_identity():
        route = routes.BY_ENDPOINT.get(request.endpoint or "")
        if is_open(route):
            return None
        if request.headers.get("X-Identity-Status") != "Confirmed":
            resp = error_response(401, "authentication required: send a Keystone token "
                                       "in the X-Auth-Token header")
            if www:
                resp.headers["WWW-Authenticate"] = f"Keystone uri='{www}'"
            return resp
        if route is None:
            return None  # authenticated, but no such route: the 404 follows
        creds = {"roles": [r.strip() for r in re.split(r",", request.headers.get(
                     "X-Roles", "")) if r.strip()],
                 "project_id": request.headers.get("X-Project-Id"),
                 "user_id": request.headers.get("X-User-Id")}
        target = {"project_id": creds["project_id"], "user_id": creds["user_id"]}
        action = _action_of(route)
        if not enforcer.enforce(action, target, creds):
            LOG.info("policy refused %s to user %s (roles %s)", action, creds["user_id"],
                     ",".join(creds["roles"]) or "none")
            return error_response(403, f"policy does not allow {action} "
                                       f"(roles: {', '.join(creds['roles']) or 'none'})")
        return None
