"""congress-ha-lab's argument handling and errors (no lab is started here)."""

from __future__ import annotations

import pytest

from congress_ha.lab import cli


@pytest.fixture(autouse=True)
def _root(tmp_path, monkeypatch):
    monkeypatch.setenv("CONGRESS_HA_LAB_ROOT", str(tmp_path))
    monkeypatch.delenv("CONGRESS_HA_LAB_NAME", raising=False)


@pytest.mark.parametrize("argv", [
    ["up", "--nodes", "0"], ["up", "--nodes", "x"], ["--name", "Bad-Name", "up"],
    ["up", "--name", "waytoolongname"], ["frobnicate"], [], ["kill"],
])  # fmt: skip
def test_bad_arguments_exit_2_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_name_is_accepted_before_or_after_the_command():
    p = cli.build_parser()
    assert p.parse_args(["--name", "aa", "status"]).name == "aa"
    assert p.parse_args(["status", "--name", "bb"]).name == "bb"
    assert p.parse_args(["status"]).name == "chlab"


def test_exec_keeps_the_command_after_the_double_dash():
    args = cli.build_parser().parse_args(["exec", "n1", "--", "crm_mon", "-1"])
    assert args.node == "n1" and args.argv[-2:] == ["crm_mon", "-1"]


@pytest.mark.parametrize("command", [["status"], ["inventory"], ["kill", "n1"],
                                     ["exec", "n1", "--", "true"]])  # fmt: skip
def test_commands_on_a_missing_lab_exit_3_without_traceback(command, capsys):
    assert cli.main(["--name", "nolab", *command]) == 3
    err = capsys.readouterr().err
    assert "no lab nolab" in err and "Traceback" not in err


def test_too_many_nodes_is_a_clear_error(capsys):
    assert cli.main(["up", "--nodes", "40"]) == 1
    assert "--nodes must be between 1 and 32" in capsys.readouterr().err


def test_up_without_root_says_so(monkeypatch, capsys):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli.main(["--name", "x", "up"]) == 1
    assert "needs root" in capsys.readouterr().err


def test_down_of_a_lab_that_does_not_exist_is_not_an_error(monkeypatch, capsys):
    monkeypatch.setattr("os.geteuid", lambda: 0)  # nothing to remove: no root needed
    assert cli.main(["--name", "nolab", "down"]) == 0
    assert "nothing to remove" in capsys.readouterr().out
