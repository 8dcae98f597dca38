"""The playbook without hosts: linters, syntax, role conventions. That the roles
render the same bytes as `congress-ha-ctl render` and the lab is
tests/cluster/test_three_paths.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .conftest import ANSIBLE, REPO, run, tool

ROLES = sorted(p.name for p in (ANSIBLE / "roles").iterdir() if p.is_dir())


def test_ansible_lint_passes_with_the_production_profile() -> None:
    proc = run([tool("ansible-lint"), "--nocolor", "-f", "pep8"], check=False,
               env={"NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yamllint_passes() -> None:
    run([tool("yamllint"), "--strict", "ansible", ".ansible-lint", ".yamllint"])


@pytest.mark.parametrize("inventory", ["example", "lab"])
def test_site_yml_passes_the_syntax_check(inventory: str, tmp_path: Path) -> None:
    sources = ["-i", str(ANSIBLE / "inventories" / inventory)]
    if inventory == "lab":
        # The overlay needs the lab's own inventory beside it.
        lab = {"all": {"vars": {"congress_ha_lab": "x"},
                       "children": {"cluster": {"hosts": {"x-n1": {"corosync_nodeid": 1}}},
                                    "infra": {"hosts": {"x-infra": {}}}}}}
        (tmp_path / "lab.yml").write_text(yaml.safe_dump(lab))
        sources = ["-i", str(tmp_path / "lab.yml"), *sources]
    run([tool("ansible-playbook"), *sources, "--syntax-check", str(ANSIBLE / "site.yml")],
        env={"ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")})


def test_deploy_lab_script_is_shellcheck_clean() -> None:
    shellcheck = tool("shellcheck")
    run([shellcheck, "-s", "sh", str(REPO / "scripts" / "deploy-lab.sh")])


@pytest.mark.parametrize("role", ROLES)
def test_role_follows_the_layout(role: str) -> None:
    path = ANSIBLE / "roles" / role
    for needed in ("defaults/main.yml", "tasks/main.yml", "meta/main.yml", "README.md"):
        assert (path / needed).is_file(), f"{role}: {needed} missing"
    tasks = yaml.safe_load((path / "tasks" / "main.yml").read_text())
    # main.yml is a table of contents: includes (and a meta step), nothing else.
    for task in tasks:
        modules = set(task) - {"name", "when", "tags", "vars"}
        assert modules <= {"ansible.builtin.include_tasks", "ansible.builtin.meta"}, \
            f"{role}: tasks/main.yml does more than include: {task['name']}"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_are_prefixed_and_documented(role: str) -> None:
    path = ANSIBLE / "roles" / role
    defaults = yaml.safe_load((path / "defaults" / "main.yml").read_text()) or {}
    readme = (path / "README.md").read_text()
    for name in defaults:
        assert name.startswith(role + "_"), f"{role}: {name} lacks the prefix {role}_"
        assert f"`{name}`" in readme, f"{role}: {name} is not in README.md"
    private = ANSIBLE / "roles" / role / "vars" / "main.yml"
    if private.exists():
        for name in yaml.safe_load(private.read_text()) or {}:
            assert name.startswith(f"__{role}_"), f"{role}: vars/{name} is not private"


def test_every_public_variable_is_in_the_example_inventory() -> None:
    example = yaml.safe_load(
        (ANSIBLE / "inventories" / "example" / "group_vars" / "all.yml").read_text())
    text = (ANSIBLE / "inventories" / "example" / "group_vars" / "all.yml").read_text()
    for role in ROLES:
        defaults = yaml.safe_load((ANSIBLE / "roles" / role / "defaults" / "main.yml")
                                  .read_text()) or {}
        for name in defaults:
            assert name in example or f"# {name}:" in text, f"{name} not in the example"


def test_a_failed_resource_build_shows_its_output_with_secrets_masked(tmp_path: Path) -> None:
    """build_failed.yml with the role's own secret list: the command's stderr is in
    the log, the fence password and the URL passwords are not."""
    role = ANSIBLE / "roles" / "congress_ha_resources"
    context = {"cluster": {
        "fencing": {"devices": [{"id": "fence-n1", "secret": "fence-pw-42", "params": {
            "ip": "203.0.113.50", "username": "admin", "pcmk_host_list": "n1",
            "password_script": "/bin/cat /etc/congress-ha/fence/fence-n1.password"}}]},
        "transport_url": "rabbit://congress:bus-pw-43@203.0.113.2:5672/",
        "database_connection": "postgresql://congress:db-pw-44@203.0.113.2/congress"}}
    build = {"rc": 1, "stdout": "",
             "stderr": "Error: unable to create 'fence-n1': ip=203.0.113.50 "
                       "password=fence-pw-42 (agent refused: bus-pw-43 db-pw-44)"}
    play = [{"hosts": "localhost", "gather_facts": False, "connection": "local",
             "vars": {"congress_ha_cluster_context": context,
                      "congress_ha_cluster_shell": "pcs",
                      "congress_ha_resources_work_dir": "/nowhere",
                      "__congress_ha_resources_build": build},
             "tasks": [{"name": "The role's variables",
                        "ansible.builtin.include_vars": str(role / "vars" / "main.yml")},
                       {"name": "The task under test",
                        "ansible.builtin.include_tasks": str(role / "tasks" /
                                                             "build_failed.yml")}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    proc = run([tool("ansible-playbook"), "-i", "localhost,", str(tmp_path / "play.yml")],
               check=False, env={"ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "unable to create 'fence-n1': ip=203.0.113.50" in out and "exit code 1" in out
    for secret in ("fence-pw-42", "bus-pw-43", "db-pw-44"):
        assert secret not in out
    assert out.count("********") >= 3, out
