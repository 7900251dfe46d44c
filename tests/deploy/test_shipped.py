"""The shipped deployment files pass their own tools: systemd-analyze verify, promtool (config, rules,
rule unit tests), nginx -t; the units restart exactly the transient exit codes; every metric an alert
or the dashboard uses exists under that name."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from node import exitcodes
from tests.deploy.shipped import (
    NGINX_GATEWAY, NGINX_NODE, PKI, PROMETHEUS, UNITS, adapt_nginx, exec_start, nginx_main, read_unit, tool,
    write_adapted_units,
)
from tests.gateway.test_ops import documented_gateway_metrics
from tests.node.test_metrics import documented_metrics
from tests.paths import REPO_ROOT

HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
             "RestrictNamespaces": "yes", "LockPersonality": "yes", "CapabilityBoundingSet": "", "UMask": "0077"}


def test_units_verify_and_restart_only_transient_failures(tmp_path: Path) -> None:
    prefix, state = tmp_path / "opt" / "veche", tmp_path / "var" / "lib" / "veche"
    (prefix / "bin").mkdir(parents=True)
    veche = prefix / "bin" / "veche"
    veche.write_text("#!/bin/sh\n")
    veche.chmod(0o755)
    for role in UNITS:
        (state / role).mkdir(parents=True)
    units = write_adapted_units(tmp_path / "units", prefix, state)
    result = subprocess.run([tool("systemd-analyze"), "verify", "--man=no", *map(str, units)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        result.stdout + result.stderr
    for role, path in UNITS.items():
        service = read_unit(path)["Service"]
        assert service["Restart"] == "on-failure"
        assert sorted(int(code) for code in service["RestartPreventExitStatus"].split()) == \
            sorted(exitcodes.PERMANENT)
        assert service["User"] == "veche" and service["Group"] == "veche"
        for key, value in HARDENING.items():
            assert service.get(key) == value, (role, key)
        command = shlex.split(service["ExecStart"])
        assert command[:3] == ["/opt/veche/bin/veche", "gateway" if role == "gateway" else "node", "start"]
        home = command[command.index("--home") + 1]
        assert home == f"/var/lib/veche/{role}" and service["ReadWritePaths"] == home
        assert exec_start(role, prefix, state)[0] == str(veche)
        assert "time-sync.target" in read_unit(path)["Unit"]["After"]


def test_prometheus_config_rules_and_rule_tests(tmp_path: Path) -> None:
    promtool = tool("promtool")
    for name in ("prometheus.yml", "veche-alerts.yml", "veche-alerts.test.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    subprocess.run(["sh", str(PKI), "init", str(tmp_path / "ca")], check=True, capture_output=True)
    shutil.copy(tmp_path / "ca" / "ca.crt", tmp_path / "veche-ca.pem")
    for command in (["check", "rules", "veche-alerts.yml"], ["check", "config", "prometheus.yml"],
                    ["test", "rules", "veche-alerts.test.yml"]):
        result = subprocess.run([promtool, *command], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"promtool {' '.join(command)}:\n{result.stdout}{result.stderr}"
        assert "SUCCESS" in result.stdout + result.stderr


def metric_names(text: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in re.findall(r"\bveche_[a-z0-9_]+", text)}


def test_alerts_and_dashboard_use_metrics_that_exist() -> None:
    exposed = documented_metrics() | documented_gateway_metrics()
    alerts = (PROMETHEUS / "veche-alerts.yml").read_text(encoding="utf-8")
    used_by_alerts = metric_names(alerts)
    assert used_by_alerts and not used_by_alerts - exposed, used_by_alerts - exposed
    for needed in ("VecheHeightNotAdvancing", "VecheFewPeers", "VecheEquivocation", "VecheRoundChangesRising",
                   "VecheSmsFailing", "VecheSmsOutOfMoney", "VecheGatewayBacklog", "VecheGatewayUnhealthy"):
        assert f"alert: {needed}" in alerts
    dashboard = json.loads((REPO_ROOT / "deploy" / "grafana" / "veche-dashboard.json").read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = set().union(*(metric_names(expr) for expr in expressions))
    assert len(expressions) >= 20 and not used - exposed, used - exposed
    assert {"veche_height", "veche_gateway_sms_failed_total", "veche_gateway_unconfirmed_ballots"} <= used


def test_nginx_sites_pass_nginx_t(tmp_path: Path) -> None:
    subprocess.run(["sh", str(PKI), "init", str(tmp_path / "ca")], check=True, capture_output=True)
    subprocess.run(["sh", str(PKI), "issue", str(tmp_path / "ca"), "site", "DNS:localhost"], check=True,
                   capture_output=True)
    sites = []
    for shipped in (NGINX_NODE, NGINX_GATEWAY):
        site = tmp_path / shipped.name
        site.write_text(adapt_nginx(shipped, server_name="localhost", cert=tmp_path / "ca" / "site.crt",
                                    key=tmp_path / "ca" / "site.key"), encoding="utf-8")
        sites.append(site)
    main = tmp_path / "nginx.conf"
    main.write_text(nginx_main(tmp_path, sites), encoding="utf-8")
    result = subprocess.run([tool("nginx"), "-t", "-c", str(main), "-p", str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
