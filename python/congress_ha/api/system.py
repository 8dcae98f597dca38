"""Views outside the policy data: versions, liveness, this document, the HA
extension and the datasource drivers."""

from __future__ import annotations

from flask import Response

from congress_ha.api.datasources import table_dict
from congress_ha.api.http import json_response
from congress_ha.metrics import CONTENT_TYPE

UPDATED = "2013-08-12T17:42:13Z"   # Congress's v1 date, which clients may show


def _v1(root: str) -> dict:
    return {"id": "v1", "status": "CURRENT", "updated": UPDATED,
            "links": [{"rel": "self", "href": root.rstrip("/") + "/v1/"}]}


def versions(svc, call) -> dict:
    return {"versions": [_v1(call.root)]}


def version_v1(svc, call) -> dict:
    return {"version": _v1(call.root)}


def healthz(svc, call) -> Response:
    return Response(b'{"ok":true}\n', mimetype="application/json")


def readyz(svc, call) -> Response:
    """Readiness, for a load balancer: 200 only while this PE may answer queries
    (bus up, current policies, a synced copy of every datasource: health depth
    20); 503 otherwise. No reason in the body (it is open to all): operators
    read it from `congress-ha-ctl status`."""
    if svc.ready():
        return Response(b'{"ready":true}\n', mimetype="application/json")
    return Response(b'{"ready":false}\n', status=503, mimetype="application/json",
                    headers={"Retry-After": "1"})


def metrics(svc, call) -> Response:
    """The process's metrics (congress_ha/metrics.py), read now."""
    return Response(call.extra["metrics"].text(), content_type=CONTENT_TYPE)


def openapi(svc, call) -> Response:
    return json_response(call.extra["openapi"])


def ha_status(svc, call) -> dict:
    return svc.ha_status()


def list_drivers(svc, call) -> dict:
    return {"results": [{"id": d["name"], "description": d.get("description", "")}
                        for d in svc.drivers()]}


def get_driver(svc, call) -> dict:
    info = svc.driver(call.path["driver"])
    return {"id": info["name"], "description": info.get("description", ""),
            "config": info.get("config", {}),
            "tables": [table_dict(t, cols) for t, cols in sorted(info["tables"].items())],
            "actions": info.get("actions")}
