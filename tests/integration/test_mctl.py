"""
mctl end to end against the real daemon: the session commands, upload and
load, snapshots, and `mctl run` with its exit codes (0 text seen, 1 failure
text, 3 timeout, 4 server unreachable, 2 usage).
"""
import json
import os
import subprocess

import pytest

from conftest import BUILD, MICROBIT_HEX, free_port

MCTL = os.path.join(BUILD, "mctl")


def mctl(d, *args, timeout=120, env=None, server=True):
    cmd = [MCTL]
    if server:
        cmd += ["--server", "http://127.0.0.1:%d" % d.port]
    if d is not None and d.api_key:
        cmd += ["--api-key", d.api_key]
    e = {k: v for k, v in os.environ.items() if not k.startswith("MACHINESERVER_")}
    e.update(env or {})
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=e)


@pytest.fixture(scope="module", autouse=True)
def _have_mctl():
    if not os.access(MCTL, os.X_OK):
        pytest.fail("no mctl at %s: run make first" % MCTL)


def test_run_expect_seen_exits_0(clean, fw):
    p = mctl(clean, "run", "-b", "mps2-an385", fw.elf, "--expect", "mstest ready", "--timeout", "60")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "mstest ready" in p.stdout


def test_run_fail_text_exits_1(clean, fw):
    p = mctl(clean, "run", "-b", "mps2-an385", fw.elf, "--expect", "never printed", "--fail-text", "ready",
             "--timeout", "60")
    assert p.returncode == 1, (p.stdout, p.stderr)


def test_run_timeout_exits_3(clean, fw):
    p = mctl(clean, "run", "-b", "mps2-an385", fw.elf, "--expect", "never printed", "--timeout", "3")
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert "mstest ready" in p.stdout


def test_run_server_unreachable_exits_4(fw):
    port = free_port()
    p = subprocess.run([MCTL, "--server", "http://127.0.0.1:%d" % port, "run", "-b", "mps2-an385", fw.elf,
                        "--expect", "x", "--timeout", "5"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 4, (p.stdout, p.stderr)


def test_run_unknown_board_is_refused_exit_1(clean, fw):
    p = mctl(clean, "run", "-b", "no-such-board", fw.elf, "--expect", "x", "--timeout", "5")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "no-such-board" in p.stderr


def test_run_types_input_after_prompt(clean, fw):
    p = mctl(clean, "run", "-b", "mps2-an385", fw.elf, "--input-after", "> ", "--input-text", "inc\\rinc\\r",
             "--expect", "counter=2", "--timeout", "60")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "counter=1" in p.stdout and "counter=2" in p.stdout


def test_run_server_from_environment(clean, fw):
    p = mctl(None, "run", "-b", "mps2-an385", fw.elf, "--expect", "mstest ready", "--timeout", "60",
             server=False, env={"MACHINESERVER_URL": "http://127.0.0.1:%d" % clean.port})
    assert p.returncode == 0, (p.stdout, p.stderr)


def test_usage_errors_exit_2(clean, fw):
    assert mctl(clean, "run", "-b", "mps2-an385").returncode == 2
    assert mctl(clean, "run", "-b", "mps2-an385", "/nonexistent/fw.elf", "--expect", "x").returncode == 2
    assert mctl(clean, "no-such-command").returncode == 2
    assert mctl(clean, "run", "-b", "mps2-an385", fw.elf, "--timeout", "soon").returncode == 2


def test_session_commands(clean, fw):
    d = clean
    p = mctl(d, "--compact", "sessions", "create", "-b", "qemu", "--board", "mps2-an385")
    assert p.returncode == 0, (p.stdout, p.stderr)
    s = json.loads(p.stdout)
    sid = s["id"]
    assert s["state"] == "created"
    p = mctl(d, "--compact", "sessions", "list")
    assert p.returncode == 0 and sid in p.stdout, (p.stdout, p.stderr)
    p = mctl(d, "--compact", "upload", fw.elf)
    assert p.returncode == 0, (p.stdout, p.stderr)
    prog = json.loads(p.stdout)
    assert prog["format"] == "elf"
    p = mctl(d, "load", sid, prog["id"])
    assert p.returncode == 0, (p.stdout, p.stderr)
    p = mctl(d, "poweron", sid)
    assert p.returncode == 0, (p.stdout, p.stderr)
    d.wait_state(sid, "running")
    p = mctl(d, "--compact", "sessions", "show", sid)
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "running", (p.stdout, p.stderr)
    # The console without a terminal: standard input goes to the UART.
    p = subprocess.run([MCTL, "--server", "http://127.0.0.1:%d" % d.port, "console", sid, "--wait", "1"],
                       input="inc\r", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "mstest ready" in p.stdout and "counter=1" in p.stdout, p.stdout
    p = mctl(d, "snapshot", sid, "snap1")
    assert p.returncode == 0, (p.stdout, p.stderr)
    p = mctl(d, "snapshots", sid)
    assert p.returncode == 0 and "snap1" in p.stdout, (p.stdout, p.stderr)
    p = mctl(d, "restore", sid, "snap1")
    assert p.returncode == 0, (p.stdout, p.stderr)
    p = mctl(d, "snapshot", sid, "bad name; reboot")
    assert p.returncode in (1, 2), (p.stdout, p.stderr)
    p = mctl(d, "poweroff", sid)
    assert p.returncode == 0, (p.stdout, p.stderr)
    d.wait_state(sid, "stopped")
    p = mctl(d, "sessions", "show", "sess_ffffffffffffffff")
    assert p.returncode == 1, (p.stdout, p.stderr)
    p = mctl(d, "sessions", "delete", sid)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert d.get("/api/v1/sessions/" + sid).status == 404


def test_run_with_api_key_on_auth_daemon(auth_daemon, fw):
    p = mctl(auth_daemon, "run", "-b", "mps2-an385", fw.elf, "--expect", "mstest ready", "--timeout", "60")
    assert p.returncode == 0, (p.stdout, p.stderr)
    p = subprocess.run([MCTL, "--server", "http://127.0.0.1:%d" % auth_daemon.port, "sessions", "list"],
                       capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.startswith("MACHINESERVER_")})
    assert p.returncode == 1, (p.stdout, p.stderr)
    auth_daemon.delete_all_sessions()


def test_run_micropython_hex_with_input(clean):
    p = mctl(clean, "run", "-b", "microbit", MICROBIT_HEX, "--input-after", ">>> ", "--input-text", "print(1+2)\\r",
             "--expect", "\\n3\\r\\n", "--timeout", "90")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "MicroPython" in p.stdout and "3" in p.stdout.split("print(1+2)", 1)[1]
