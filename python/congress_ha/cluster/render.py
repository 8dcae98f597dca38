"""Render the cluster's files from cluster.yaml through the templates in templates/.

The templates are the one source of these files.  ``template_context`` is the
whole contract between the model and the templates: plain dicts and lists (no
objects, no custom tests), so any Jinja2 that has Ansible's ``quote`` filter
can render them.  The Ansible role congress_ha_cluster (its action plugin) and
the lab (congress_ha.lab.cluster) take their context from this function too.
It is documented in templates/README.md.
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import jinja2

from congress_ha.cluster.model import (
    FENCE_SECRET_DIR,
    Cluster,
    Duration,
    fence_secret_file,
    load_cluster,
)

LOG = logging.getLogger(__name__)

TEMPLATES_ENV = "CONGRESS_HA_TEMPLATES"
# Where a packaged install puts templates/ (the Ansible role and the
# distribution packages use the same folder).
_INSTALLED_TEMPLATES = Path("/usr/share/congress-ha/templates")
_MARKER = "cib.xml.j2"

# Files that carry secrets (bus and database passwords, fence credentials) are
# written readable by their owner only.
_PRIVATE = 0o600
_PUBLIC = 0o644


class RenderError(Exception):
    """Rendering could not run (templates missing or broken, output not writable)."""


@dataclass
class RenderResult:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # sentences for the operator


def templates_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The templates folder: ``override``, else $CONGRESS_HA_TEMPLATES, else the repo's.

    The repository's templates/ sits three levels above this package
    (python/congress_ha/cluster); an installed copy lives in
    /usr/share/congress-ha/templates.
    """
    if override is None:
        override = os.environ.get(TEMPLATES_ENV) or None
    if override is not None:
        path = Path(override)
        if not (path / _MARKER).is_file():
            raise RenderError(f"{path}: not a congress-ha templates folder (no {_MARKER})")
        return path
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "templates", _INSTALLED_TEMPLATES):
        if (candidate / _MARKER).is_file():
            return candidate
    raise RenderError(f"templates not found next to the package ({here.parents[3]}/templates) "
                      f"nor in {_INSTALLED_TEMPLATES}; set {TEMPLATES_ENV} to the "
                      "templates folder")


def environment(folder: Path) -> jinja2.Environment:
    """A Jinja2 environment that renders like Ansible's template module."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        # Ansible's defaults, so both produce the same bytes.
        trim_blocks=True,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["quote"] = shlex.quote  # Ansible's quote filter is shlex.quote too
    return env


def _plain(value: Any) -> Any:
    """A model value as template data: durations in Pacemaker's spelling, lists, dicts."""
    if isinstance(value, Duration):
        return value.text
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _haproxy_time(value: Duration) -> str:
    # haproxy spells minutes "m", Pacemaker "min": write seconds or ms.
    return f"{value.ms // 1000}s" if value.ms % 1000 == 0 else f"{value.ms}ms"


def _ini(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def template_context(cluster: Cluster) -> dict[str, Any]:
    """Everything the templates see, as plain data (documented in templates/README.md).

    Every field of the model's sections reaches the templates under its own
    name, so a new cluster.yaml key needs no change here.
    """
    tls = cluster.tls
    nodes = [{**_plain(n), "api_pe": n.api_pe, "datasources": n.datasources,
              "tls": tls.node_files(n.name) if tls is not None and tls.api else None}
             for n in cluster.nodes]
    fencing = cluster.fencing
    devices = []
    if fencing.enabled:
        # secret: the device's password (None if none); templates never use it, the
        # playbook installs it as secret_file on every node, render writes it beside.
        devices = [{"id": f"fence-{n.name}", "node": n.name,
                    "params": fencing.device_params(n.name),
                    "secret": fencing.device_secret(n.name),
                    "secret_file": fence_secret_file(n.name)} for n in cluster.nodes]
    haproxy = {f.name: getattr(cluster.haproxy, f.name) for f in fields(cluster.haproxy)}
    plain = _plain(cluster.resources)
    resources = {k: v for k, v in plain.items() if not k.endswith("_monitor")}
    resources["monitor"] = {k.removesuffix("_monitor"): v for k, v in plain.items()
                            if k.endswith("_monitor")}
    return {
        "source": Path(cluster.source).name,
        "cluster": {
            "name": cluster.name,
            "nodes": nodes,
            "api_pe_nodes": [n.name for n in cluster.api_pe_nodes],
            "datasources_nodes": [n.name for n in cluster.datasources_nodes],
            "datasources_preferred_node": cluster.datasources_preferred_node,
            "transport_url": cluster.transport_url,
            "database_connection": cluster.database_connection,
            "vip": _plain(cluster.vip),
            "haproxy": {k: _haproxy_time(v) if isinstance(v, Duration) else v
                        for k, v in haproxy.items()},
            "corosync": _plain(cluster.corosync),
            "fencing": {
                "enabled": fencing.enabled, "agent": fencing.agent, "devices": devices,
                "monitor_interval": fencing.monitor_interval.text},
            "service": {**_plain(cluster.service),
                        "ha": {k: _ini(v) for k, v in cluster.service.ha.items()}},
            "resources": resources,
            # None, or {ca_file, cert_file, key_file, nodes, api, bus, database}.
            "tls": _plain(tls),
        },
    }


def render_text(env: jinja2.Environment, template: str, context: dict[str, Any],
                **extra: Any) -> str:
    """``template`` rendered with ``context`` (and ``extra``); RenderError names the line."""
    folder = env.loader.searchpath[0]  # type: ignore[union-attr]
    try:
        return env.get_template(template).render(**context, **extra)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"{folder}/{exc.name}: template missing") from None
    except jinja2.TemplateError as exc:
        where = f"{folder}/{getattr(exc, 'name', None) or template}"
        if getattr(exc, "lineno", None):
            where += f":{exc.lineno}"
        raise RenderError(f"{where}: {exc}") from None


def _write(path: Path, text: str, mode: int) -> None:
    # Write beside the target and rename, so a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_cluster(cluster: Cluster, out_dir: str | os.PathLike[str],
                   templates: str | os.PathLike[str] | None = None) -> RenderResult:
    """Render every file for ``cluster`` into ``out_dir``; say what was skipped and why."""
    folder = templates_dir(templates)
    env = environment(folder)
    context = template_context(cluster)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"{out}: cannot create the output folder: {exc.strerror}") from None

    jobs: list[tuple[str, str, dict[str, Any], int]] = [
        ("corosync.conf.j2", "corosync.conf", {}, _PUBLIC)]
    # node_id and bind_host differ on every node, so every node gets its own
    # file; the agents' config parameter names the same path on each node.
    for node in context["cluster"]["nodes"]:
        jobs.append(("congress-ha.conf.j2", f"congress-ha.{node['name']}.conf",
                     {"node": node}, _PRIVATE))
    jobs += [
        ("resources.pcs.sh.j2", "resources.pcs.sh", {}, 0o700),
        ("resources.crm.j2", "resources.crm", {}, _PRIVATE),
        ("cib.xml.j2", "cib.xml", {}, _PRIVATE),
    ]
    result = RenderResult()
    if cluster.haproxy.enabled:
        jobs.append(("haproxy.cfg.j2", "haproxy.cfg", {}, _PUBLIC))
    else:
        result.skipped.append("haproxy.cfg: not written, haproxy is not enabled in "
                              f"{context['source']}")
        stale = out / "haproxy.cfg"
        if stale.exists():
            stale.unlink()
            result.skipped.append(f"haproxy.cfg: removed the one an earlier render left in "
                                  f"{out}")

    if cluster.tls is None:
        result.skipped.append(f"TLS: off on every link (API, bus, database): "
                              f"{context['source']} has no tls section (docs/security.md)")
    else:
        off = [link for link in ("api", "bus", "database") if not getattr(cluster.tls, link)]
        if off:
            result.skipped.append(f"TLS: off for {', '.join(off)} (tls.{off[0]}: false in "
                                  f"{context['source']})")
    secrets = {Path(d["secret_file"]).name: d["secret"] + "\n"
               for d in context["cluster"]["fencing"]["devices"] if d["secret"] is not None}
    if secrets:
        result.skipped.append(f"fence passwords: in {', '.join(sorted(secrets))}, not in the "
                              f"CIB; install each as {FENCE_SECRET_DIR}/NAME on every node, "
                              "root 0600 (the playbook does)")
    for old in sorted(out.glob("fence-*.password")):
        if old.name not in secrets:
            old.unlink()
    for name, text in sorted(secrets.items()):
        try:
            _write(out / name, text, _PRIVATE)
        except OSError as exc:
            raise RenderError(f"{out / name}: cannot write: {exc.strerror}") from None
        result.written.append(out / name)
    wanted = {name for _, name, _, _ in jobs}
    for old in sorted(out.glob("congress-ha.*.conf")):
        if old.name not in wanted:
            old.unlink()
            result.skipped.append(f"{old.name}: removed, its node is no longer in "
                                  f"{context['source']}")

    for template, name, extra, mode in jobs:
        text = render_text(env, template, context, **extra)
        target = out / name
        try:
            _write(target, text, mode)
        except OSError as exc:
            raise RenderError(f"{target}: cannot write: {exc.strerror}") from None
        result.written.append(target)
        LOG.debug("rendered %s", target)
    for sentence in result.skipped:
        LOG.info("%s", sentence)
    return result


def render(cluster_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
           templates: str | os.PathLike[str] | None = None) -> list[Path]:
    """Load and check ``cluster_path``, render every file into ``out_dir``; the paths written.

    Raises ClusterConfigError (the file's mistakes) or RenderError.
    """
    return render_cluster(load_cluster(cluster_path), out_dir, templates).written
