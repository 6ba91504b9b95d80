"""
The daemon's command line and configuration as a new user meets them:
--help, --version, the minimal config of the issue, and configs that must be
refused with their line and column (unknown keys, bad values, a non-loopback
bind without auth).
"""
import os
import re
import subprocess
import time

from conftest import BUILD, Daemon, assert_error, free_port

EXE = os.path.join(BUILD, "machineserver")


def _run(args, cwd=None, timeout=20):
    return subprocess.run([EXE] + args, capture_output=True, text=True, cwd=cwd, timeout=timeout)


def test_help_and_version():
    p = _run(["--help"])
    assert p.returncode == 0 and "--config" in p.stdout
    p = _run(["--version"])
    version = open(os.path.join(os.path.dirname(__file__), "..", "..", "VERSION")).read().strip()
    assert p.returncode == 0 and version in p.stdout


def test_unknown_argument_fails():
    p = _run(["--no-such-flag"])
    assert p.returncode != 0 and "--no-such-flag" in p.stderr


def _refused(tmp_path, text):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    p = _run(["--config", str(cfg)], cwd=str(tmp_path))
    assert p.returncode != 0, p
    return p.stderr


def test_unknown_key_refused_with_line_and_column(tmp_path):
    err = _refused(tmp_path, "server:\n  port: %d\n  colour: blue\nauth:\n  enabled: false\n" % free_port())
    assert re.search(r"config\.yaml:3:\d+", err), err
    assert "colour" in err


def test_bad_values_refused(tmp_path):
    port = free_port()
    err = _refused(tmp_path, "server:\n  port: eighty\n")
    assert re.search(r"config\.yaml:2:\d+", err), err
    err = _refused(tmp_path, "server:\n  port: 70000\n")
    assert "port" in err, err
    err = _refused(tmp_path, "server:\n  port: %d\nresources:\n  max_sessions: -3\n" % port)
    assert re.search(r"config\.yaml:4:\d+", err), err
    err = _refused(tmp_path, "server:\n  port: %d\nauth:\n  enabled: maybe\n" % port)
    assert re.search(r"config\.yaml:4:\d+", err), err
    err = _refused(tmp_path, "server: [1, 2\n")
    assert "config.yaml" in err, err


def test_refuses_non_loopback_without_auth(tmp_path):
    err = _refused(tmp_path, "server:\n  port: %d\n  bind: 0.0.0.0\nauth:\n  enabled: false\n"
                   "backends:\n  qemu:\n    enabled: true\n" % free_port())
    assert "auth" in err.lower() and ("loopback" in err.lower() or "0.0.0.0" in err), err


def test_minimal_config_is_enough(tmp_path):
    port = free_port()
    cfg = tmp_path / "config.yaml"
    cfg.write_text("server:\n  port: %d\nauth:\n  enabled: false\nbackends:\n  qemu:\n    enabled: true\n" % port)
    p = subprocess.Popen([EXE, "--config", str(cfg)], cwd=str(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        d = Daemon.__new__(Daemon)
        d.port, d.api_key = port, None
        deadline = time.monotonic() + 20
        while True:
            assert p.poll() is None, p.stdout.read()
            try:
                if d.get("/health").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = d.post("/api/v1/sessions", {"backend": "qemu", "board_config": {"board": "mps2-an385"}})
        assert r.status == 201, r
        d.delete("/api/v1/sessions/" + r.json()["id"])
    finally:
        p.terminate()
        p.wait(20)
    assert p.returncode == 0


def test_monitoring_disabled_hides_metrics(own_daemon):
    d = own_daemon({"monitoring": {"enabled": False}, "server": {"mode": "debug"}}).start()
    assert_error(d.get("/metrics"), 404)
    assert d.get("/health").status == 200


def test_bad_mode_refused(tmp_path):
    err = _refused(tmp_path, "server:\n  port: %d\n  mode: fast\n" % free_port())
    assert re.search(r"config\.yaml:3:\d+", err), err


def test_auth_enabled_without_credentials_refused(tmp_path):
    err = _refused(tmp_path, "server:\n  port: %d\nauth:\n  enabled: true\n" % free_port())
    assert "api key" in err.lower() or "api_keys" in err, err
    err = _refused(tmp_path, "server:\n  port: %d\nauth:\n  enabled: true\n  jwt_secret: short\n" % free_port())
    assert "jwt_secret" in err, err
