"""congress_ha.config: every bad value is named with its option and file."""

import pytest

from congress_ha.config import ConfigError, broker_hosts, parse_file


def write(tmp_path, text):
    p = tmp_path / "congress-ha.conf"
    p.write_text(text)
    return str(p)


def test_defaults_fill_what_the_file_leaves_out(tmp_path):
    s = parse_file(write(tmp_path, "[DEFAULT]\ntransport_url = rabbit://localhost/\n"
                                   "node_id = n1\n"))
    assert s.ha.heartbeat_interval == 0.25
    assert s.ha.peer_timeout == 1.0
    assert s.api.bind_port == 1789
    assert s.get("DEFAULT", "node_id") == "n1"


def test_node_id_defaults_to_the_host_name(tmp_path):
    import socket
    s = parse_file(write(tmp_path, "[DEFAULT]\ntransport_url = rabbit://localhost/\n"))
    assert s.get("DEFAULT", "node_id") == socket.gethostname()


@pytest.mark.parametrize("text, words", [
    ("[DEFAULT]\nnode_id = a\n", "[DEFAULT] transport_url is required"),
    ("[DEFAULT]\ntransport_url = x\n[ha]\npeer_timeout = soon\n",
     "[ha] peer_timeout = 'soon' is not a valid float"),
    ("[DEFAULT]\ntransport_url = x\n[ha]\nheartbeat_interval = 0.5\npeer_timeout = 0.6\n",
     "[ha] peer_timeout: peer_timeout 0.6 s is less than twice heartbeat_interval"),
    ("[DEFAULT]\ntransport_url = x\n[api]\nbind_host = 0.0.0.0\n",
     "auth_strategy = noauth with bind_host = 0.0.0.0"),
    ("[DEFAULT]\ntransport_url = x\n[api]\nbind_host = 203.0.113.5\nauth_strategy = noauth\n",
     "listens only on a loopback address"),
    ("[DEFAULT]\ntransport_url = x\n[api]\nauth_strategy = ldap\n",
     "is not one of noauth, token, keystone"),
    ("[DEFAULT]\ntransport_url = x\n[api]\nauth_strategy = keystone\n",
     "needs a [keystone_authtoken] section"),
    ("[DEFAULT]\ntransport_url = x\n[api]\nauth_strategy = token\n",
     "[api] token_file is required"),
    ("[DEFAULT]\ntransport_url = x\n[api]\nbind_port = 0\n", "below the minimum"),
    ("[DEFAULT]\ntransport_url = x\n[ha]\npeer_timout = 1\n", "unknown option [ha] peer_timout"),
    ("[DEFAULT]\ntransport_url = x\n[hq]\n", "unknown section [hq]"),
    ("[DEFAULT]\ntransport_url = x\nbogus = 1\n", "unknown option [DEFAULT] bogus"),
    ("transport_url = x\n", "cannot be parsed"),
    ("[DEFAULT]\ntransport_url = x\n[ha]\naction_journal = maybe\n", "not a valid bool"),
])
def test_bad_values_name_the_option_and_the_file(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        parse_file(path)
    assert words in str(exc.value)
    assert path in str(exc.value)


def test_a_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError, match="--config-file"):
        parse_file(str(tmp_path / "nope.conf"))


def test_oslo_messaging_sections_pass_through(tmp_path):
    s = parse_file(write(tmp_path, "[DEFAULT]\ntransport_url = x\n"
                                   "[oslo_messaging_rabbit]\nrabbit_retry_interval = 1\n"))
    assert s.ha.rpc_retry == 2


def test_a_remote_broker_needs_the_bus_key(tmp_path):
    remote = "[DEFAULT]\ntransport_url = rabbit://u:p@203.0.113.2:5672,127.0.0.1:5672/\n"
    with pytest.raises(ConfigError, match=r"\[bus\] key_file is required with a broker on "
                                          r"another host \(203.0.113.2\).*bus-key --write"):
        parse_file(write(tmp_path, remote))
    key = tmp_path / "bus.key"
    key.write_text("# the cluster's bus key\n" + "ab" * 32 + "\n")
    key.chmod(0o640)
    s = parse_file(write(tmp_path, remote + f"[bus]\nkey_file = {key}\n"))
    assert s.get("bus", "key_file") == str(key)
    assert s.get("bus", "max_message_age") == 120.0


@pytest.mark.parametrize("content, mode, words", [
    ("ab" * 32 + "\n", 0o644, r"readable by every user \(mode 0644\).*chmod 0640"),
    ("short\n", 0o600, r"bus.key:1: a bus key is one word of at least 32 characters"),
    ("# nothing\n", 0o600, "holds no key"),
    (None, None, r"key_file = .*bus.key: cannot be read \(No such file"),
])
def test_a_bad_bus_key_file_is_named_with_the_fix(tmp_path, content, mode, words):
    key = tmp_path / "bus.key"
    if content is not None:
        key.write_text(content)
        key.chmod(mode)
    with pytest.raises(ConfigError, match=words):
        parse_file(write(tmp_path, "[DEFAULT]\ntransport_url = rabbit://127.0.0.1/\n"
                                   f"[bus]\nkey_file = {key}\n"))


def test_file_allowed_dirs_defaults_to_the_packaged_folder_and_takes_a_list(tmp_path):
    base = "[DEFAULT]\ntransport_url = fake://\n"
    assert parse_file(write(tmp_path, base)).drivers.file_allowed_dirs == (
        "/var/lib/congress-ha/files",)
    assert parse_file(write(tmp_path, base + "[drivers]\nfile_allowed_dirs =\n")) \
        .drivers.file_allowed_dirs == ("/var/lib/congress-ha/files",)  # empty: the default
    s = parse_file(write(tmp_path, base + "[drivers]\nfile_allowed_dirs = /srv/a/, "
                                          "/srv/b//c ,/srv/a\n"))
    assert s.drivers.file_allowed_dirs == ("/srv/a", "/srv/b/c")


@pytest.mark.parametrize("value, words", [
    ("/", "'/' would let the file driver read and append any file"),
    ("/srv/a, //", "'/' would let"),
    ("/srv/a, files", "'files' is not an absolute path"),
    ("/srv/../etc", "holds '..'"),
    (" , ", "is empty: name the folders"),
])
def test_a_bad_file_allowed_dirs_names_the_option_and_the_fix(tmp_path, value, words):
    path = write(tmp_path, f"[DEFAULT]\ntransport_url = fake://\n[drivers]\n"
                           f"file_allowed_dirs = {value}\n")
    with pytest.raises(ConfigError) as exc:
        parse_file(path)
    assert words in str(exc.value) and "[drivers] file_allowed_dirs" in str(exc.value)
    assert path in str(exc.value)


@pytest.mark.parametrize("url, hosts", [
    ("rabbit://localhost/", [("localhost", 5672)]),
    # oslo.messaging's form for a cluster: credentials on every host.
    ("rabbit://guest:guest@127.0.0.1:5701,guest:guest@127.0.0.1:5702,"
     "guest:guest@127.0.0.1:5703/", [("127.0.0.1", 5701), ("127.0.0.1", 5702),
                                    ("127.0.0.1", 5703)]),
    ("rabbit://u:p@203.0.113.2,u:p@203.0.113.3:5673/vhost?ssl=1",
     [("203.0.113.2", 5672), ("203.0.113.3", 5673)]),
    ("rabbit://u:p@[2001:db8::1]:5671,u:p@[2001:db8::2]/",
     [("2001:db8::1", 5671), ("2001:db8::2", 5672)]),
])
def test_broker_hosts_reads_every_host_of_a_transport_url(url, hosts):
    assert broker_hosts(url) == hosts


def test_a_cluster_url_with_one_remote_broker_among_local_ones_needs_the_bus_key(tmp_path):
    url = "rabbit://u:p@127.0.0.1:5672,u:p@203.0.113.9:5672,u:p@127.0.0.1:5673/"
    with pytest.raises(ConfigError, match=r"another host \(203.0.113.9\)"):
        parse_file(write(tmp_path, f"[DEFAULT]\ntransport_url = {url}\n"))


def test_the_broker_check_passes_when_any_broker_of_several_listens():
    import socket

    from congress_ha.bus.transport import check_reachable

    with socket.socket() as dead, socket.create_server(("127.0.0.1", 0)) as live:
        dead.bind(("127.0.0.1", 0))  # bound, not listening: refuses
        url = (f"rabbit://g:g@127.0.0.1:{dead.getsockname()[1]},"
               f"g:g@127.0.0.1:{live.getsockname()[1]}/")
        check_reachable(url, timeout=2)
