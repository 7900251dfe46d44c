"""The shipped deployment files (deploy/) and how a test adapts them: only paths, addresses and names.

A region's operator copies these files and changes the installation prefix (/opt/veche), the state
directory (/var/lib/veche), server names, certificate paths and the monitoring network; the tests
change exactly those and nothing else, so what passes here is what the operator runs.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
from pathlib import Path

from tests.paths import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
UNITS = {role: DEPLOY / "systemd" / f"veche-{role}.service" for role in ("validator", "observer", "gateway")}
NGINX_NODE = DEPLOY / "nginx" / "veche-node.conf"
NGINX_GATEWAY = DEPLOY / "nginx" / "veche-gateway.conf"
PROMETHEUS = DEPLOY / "prometheus"
PKI = DEPLOY / "pki" / "veche-ca.sh"
INSTALL_PREFIX = "/opt/veche"
STATE_DIR = "/var/lib/veche"


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def adapt_paths(text: str, prefix: Path, state: Path) -> str:
    return text.replace(INSTALL_PREFIX, str(prefix)).replace(STATE_DIR, str(state))


def exec_start(role: str, prefix: Path, state: Path) -> list[str]:
    """The unit's ExecStart command line with the installation prefix and state directory moved."""
    line = read_unit(UNITS[role])["Service"]["ExecStart"]
    return shlex.split(adapt_paths(line, prefix, state))


def unit_environment(role: str) -> dict[str, str]:
    """``Environment=`` assignments of the unit."""
    found: dict[str, str] = {}
    for line in UNITS[role].read_text(encoding="utf-8").splitlines():
        if line.startswith("Environment="):
            for item in shlex.split(line.split("=", 1)[1]):
                key, _, value = item.partition("=")
                found[key] = value
    return found


def write_adapted_units(directory: Path, prefix: Path, state: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for path in UNITS.values():
        target = directory / path.name
        target.write_text(adapt_paths(path.read_text(encoding="utf-8"), prefix, state), encoding="utf-8")
        written.append(target)
    return written


def adapt_nginx(path: Path, *, server_name: str, cert: Path, key: Path, upstream: str | None = None,
                monitoring: str | None = None, listen: str | None = None) -> str:
    """A shipped nginx site with the operator's names, certificate paths and monitoring network."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"server_name [^;]+;", f"server_name {server_name};", text)
    text = re.sub(r"ssl_certificate +/[^;]+;", f"ssl_certificate     {cert};", text)
    text = re.sub(r"ssl_certificate_key +/[^;]+;", f"ssl_certificate_key {key};", text)
    if upstream is not None:
        text = re.sub(r"server 127\.0\.0\.1:\d+;", f"server {upstream};", text)
    if monitoring is not None:
        text = text.replace("allow 10.0.0.0/8;", f"allow {monitoring};")
    if listen is not None:                      # one address per namespace: no IPv6 there
        text = re.sub(r"\n *listen \[::\]:\d+[^;]*;", "", text)
        text = re.sub(r"listen (\d+)", rf"listen {listen}:\1", text)
    return text


def nginx_main(prefix: Path, sites: list[Path]) -> str:
    """The main nginx.conf a distribution ships (here: one instance per test machine, run as root)."""
    includes = "\n".join(f"    include {site};" for site in sites)
    return f"""user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{includes}
}}
"""


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    assert found, f"{name} is missing: scripts/test.sh installs it (apt-get install nginx prometheus systemd openssl)"
    return found
