"""
Harness for the integration tests: starts the real machineserver on a free
loopback port with a private data directory, talks to it over HTTP and
WebSocket (our own small clients, standard library only), builds the test
firmware with arm-none-eabi-gcc, and attaches the daemon's stderr to the
report of any failing test.

Environment: MS_BUILD (default ./build) holds machineserver, mctl and
firmware/; MS_KEEP_WORK=1 keeps the temporary directory of the run. Daemons are shared between tests where state allows (one plain
daemon per test session, one with auth, one with small limits); tests that
kill or restart a daemon start their own.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("MS_BUILD", os.path.join(REPO, "build")))
FW_SRC = os.path.join(os.path.dirname(__file__), "fw")
UBOOT_ELF = "/usr/lib/u-boot/qemu_arm64/uboot.elf"
MICROBIT_HEX = "/usr/share/firmware-microbit-micropython/firmware.hex"

_live_daemons = []


# ---------------------------------------------------------------- helpers

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_port_range(n=40):
    """A run of n ports in which every port can be bound right now."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - n)
        ok = True
        for p in range(base, base + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base, base + n - 1
    raise RuntimeError("no free port range")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_encode(claims, secret, header=None, sign=True):
    """HS256 JWT (or whatever header says) built here, independent of the daemon's code."""
    header = header or {"alg": "HS256", "typ": "JWT"}
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing = (h + "." + p).encode()
    sig = b64url(hmac.new(secret.encode(), signing, hashlib.sha256).digest()) if sign else ""
    return h + "." + p + "." + sig


def multipart(fields, files):
    """Encode multipart/form-data. files: list of (field, filename, bytes)."""
    boundary = "msboundary" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n" % (boundary, name)).encode()
        out += value.encode() if isinstance(value, str) else value
        out += b"\r\n"
    for name, filename, data in files:
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % (boundary, name, filename)).encode()
        out += data
        out += b"\r\n"
    out += ("--%s--\r\n" % boundary).encode()
    return bytes(out), "multipart/form-data; boundary=" + boundary


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:400])


def assert_error(r, status, code=None):
    """The one error shape: {"error":{"code":"...","message":"..."}} with the right status."""
    assert r.status == status, r
    ctype = r.header("Content-Type") or ""
    assert ctype.startswith("application/json"), (ctype, r)
    j = r.json()
    assert isinstance(j, dict) and set(j) == {"error"}, r
    err = j["error"]
    assert isinstance(err.get("code"), str) and re.fullmatch(r"[a-z0-9_]+", err["code"]), r
    assert isinstance(err.get("message"), str) and err["message"], r
    if code is not None:
        assert err["code"] == code, r
    return err


# ---------------------------------------------------------------- WebSocket client

class WSClosed(Exception):
    pass


class WS:
    """Minimal RFC 6455 client: enough to read the console stream and type into it."""

    def __init__(self, port, path, headers=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.sock.recv(4096)
            if not d:
                break
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n")[0].decode()
        self.status = int(status_line.split()[1]) if len(status_line.split()) > 1 else 0
        self.handshake = head.decode("latin-1")
        self.buf = rest
        self.closed = False
        if self.status != 101:
            # Read the rest of the refusal so the caller can check its body.
            try:
                self.sock.settimeout(2)
                while True:
                    d = self.sock.recv(65536)
                    if not d:
                        break
                    self.buf += d
                    m = re.search(r"content-length:\s*(\d+)", self.handshake, re.I)
                    if m and len(self.buf) >= int(m.group(1)):
                        break
            except OSError:
                pass
            self.sock.close()
            self.closed = True
            return
        expect = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        m = re.search(r"sec-websocket-accept:\s*(\S+)", self.handshake, re.I)
        assert m and m.group(1) == expect, self.handshake

    def send(self, data, opcode=None):
        if isinstance(data, str):
            data = data.encode()
            opcode = opcode or 1
        opcode = opcode or 2
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(hdr + mask + masked)

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError
            if not d:
                self.closed = True
                raise WSClosed
            self.buf += d

    def recv_frame(self, timeout):
        """One message: (opcode, payload). Raises TimeoutError or WSClosed."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not (b1 & 0x80), "server frames must not be masked"
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        self._need(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        opcode = b0 & 0x0F
        if opcode == 8:
            self.closed = True
        return opcode, payload

    def read_until(self, pattern, timeout=30, start=b""):
        """Collect console bytes until pattern (bytes or compiled regex) appears; return all bytes."""
        got = bytearray(start)
        deadline = time.monotonic() + timeout
        while True:
            if isinstance(pattern, bytes):
                if pattern in got:
                    return bytes(got)
            elif pattern.search(bytes(got)):
                return bytes(got)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %r; console so far: %r" % (pattern, bytes(got[-2000:])))
            try:
                op, data = self.recv_frame(left)
            except TimeoutError:
                continue
            except WSClosed:
                raise AssertionError("console closed while waiting for %r; got %r" % (pattern, bytes(got[-2000:])))
            if op in (1, 2):
                got += data
            elif op == 9:
                self.send(data, opcode=10)
            elif op == 8:
                raise AssertionError("console closed while waiting for %r; got %r" % (pattern, bytes(got[-2000:])))

    def close(self):
        if not self.closed:
            try:
                self.send(struct.pack("!H", 1000), opcode=8)
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True


# ---------------------------------------------------------------- daemon

def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def yaml_dump(d, indent=0):
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.append(" " * indent + k + ":")
            out.append(yaml_dump(v, indent + 2))
        else:
            out.append(" " * indent + "%s: %s" % (k, yaml_value(v)))
    return "\n".join(out)


def deep_merge(a, b):
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


class Daemon:
    def __init__(self, workdir, overrides=None, api_key=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.data_dir = os.path.join(workdir, "data")
        self.port = free_port()
        while True:  # the daemon refuses a gdb range that holds its own port
            gmin, gmax = free_port_range()
            if not gmin <= self.port <= gmax:
                break
        cfg = {
            "server": {"port": self.port, "bind": "127.0.0.1", "data_dir": self.data_dir},
            "auth": {"enabled": False},
            "backends": {"qemu": {"enabled": True}},
            "resources": {"max_sessions": 32, "gdb_port_min": gmin, "gdb_port_max": gmax},
        }
        self.cfg = deep_merge(cfg, overrides or {})
        self.port = self.cfg["server"]["port"]
        self.config_path = os.path.join(workdir, "config.yaml")
        with open(self.config_path, "w") as f:
            f.write(yaml_dump(self.cfg) + "\n")
        self.stderr_path = os.path.join(workdir, "stderr.log")
        self.api_key = api_key
        self.proc = None

    def start(self, wait=True):
        self.stderr_file = open(self.stderr_path, "ab")
        env = dict(os.environ)
        # Under `make sanitize`: library leaks we cannot fix here (see the file).
        env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(os.path.dirname(__file__), "lsan.supp"))
        self.proc = subprocess.Popen([os.path.join(BUILD, "machineserver"), "--config", self.config_path],
                                     stdout=self.stderr_file, stderr=self.stderr_file, cwd=self.workdir, env=env)
        _live_daemons.append(self)
        if wait:
            deadline = time.monotonic() + 30
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("machineserver exited with %s:\n%s" % (self.proc.returncode, self.stderr_tail()))
                try:
                    if self.request("GET", "/health", auth=False).status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("machineserver did not answer /health:\n" + self.stderr_tail())
                time.sleep(0.05)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in _live_daemons:
            _live_daemons.remove(self)
        if self.proc:
            self.stderr_file.close()
        return self.proc.returncode if self.proc else None

    def sanitizer_reports(self):
        """ASan/UBSan/LSan reports in the daemon's stderr (a `make sanitize` build prints them there)."""
        try:
            with open(self.stderr_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [l for l in text.splitlines()
                if "AddressSanitizer" in l or "LeakSanitizer" in l or "runtime error:" in l]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, n=60):
        try:
            with open(self.stderr_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    # -- HTTP
    def request(self, method, path, body=None, headers=None, auth=True, timeout=60):
        hdrs = dict(headers or {})
        if auth and self.api_key and "Authorization" not in hdrs:
            hdrs["Authorization"] = "ApiKey " + self.api_key
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Resp(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def raw(self, data, timeout=10):
        """Send raw bytes, return everything the server answers until it closes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            out = b""
            while True:
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not d:
                    break
                out += d
            return out
        finally:
            s.close()

    # -- API conveniences
    def upload(self, data, filename="fw.elf", field="file"):
        body, ctype = multipart([], [(field, filename, data)])
        return self.post("/api/v1/programs", body, headers={"Content-Type": ctype})

    def create_session(self, board, cpu=None, memory=None, **extra):
        bc = {"board": board}
        if cpu:
            bc["cpu"] = cpu
        if memory:
            bc["memory"] = memory
        bc.update(extra)
        r = self.post("/api/v1/sessions", {"backend": "qemu", "board_config": bc})
        assert r.status == 201, r
        return r.json()

    def session(self, sid):
        r = self.get("/api/v1/sessions/" + sid)
        assert r.status == 200, r
        return r.json()

    def wait_state(self, sid, states, timeout=30):
        if isinstance(states, str):
            states = (states,)
        deadline = time.monotonic() + timeout
        while True:
            s = self.session(sid)
            if s["state"] in states:
                return s
            if time.monotonic() > deadline:
                raise AssertionError("session %s stayed %s (%s), wanted %s" % (sid, s["state"], s, states))
            time.sleep(0.1)

    def boot(self, board, fw_bytes, filename, load_extra=None, cpu=None, memory=None):
        """Create a session, upload and load a program, open the console, power on."""
        s = self.create_session(board, cpu=cpu, memory=memory)
        r = self.upload(fw_bytes, filename)
        assert r.status == 201, r
        prog = r.json()
        body = {"program_id": prog["id"]}
        body.update(load_extra or {})
        r = self.post("/api/v1/sessions/%s/program" % s["id"], body)
        assert r.status // 100 == 2, r
        ws = self.console(s["id"])
        r = self.post("/api/v1/sessions/%s/poweron" % s["id"])
        assert r.status // 100 == 2, r
        return s, prog, ws

    def console(self, sid, headers=None):
        h = dict(headers or {})
        if self.api_key and "Authorization" not in h:
            h["Authorization"] = "ApiKey " + self.api_key
        ws = WS(self.port, "/api/v1/sessions/%s/stream/console" % sid, headers=h)
        assert ws.status == 101, ws.handshake
        return ws

    def delete_all_sessions(self):
        r = self.get("/api/v1/sessions")
        if r.status != 200:
            return
        j = r.json()
        items = j if isinstance(j, list) else j.get("sessions", [])
        for s in items:
            self.delete("/api/v1/sessions/" + s["id"])

    def qemu_children(self):
        """(pid, cmdline) of this daemon's direct children."""
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    stat = f.read()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid != self.proc.pid:
                    continue
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().split(b"\0")
                out.append((int(pid), [c.decode("utf-8", "replace") for c in cmd if c]))
            except (OSError, IndexError, ValueError):
                continue
        return out

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))


def sessions_of(j):
    """GET /sessions may answer a list or {"sessions": [...]}."""
    return j if isinstance(j, list) else j["sessions"]


# ---------------------------------------------------------------- pytest glue

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in list(_live_daemons):
            rep.sections.append(("machineserver stderr (%s)" % d.workdir, d.stderr_tail(80)))


def _stop_checked(d):
    """Stop a shared daemon: it must exit 0 on SIGTERM and have printed no sanitizer report."""
    rc = d.stop()
    reports = d.sanitizer_reports()
    assert not reports, "sanitizer reports in %s:\n%s" % (d.stderr_path, "\n".join(reports[:20]))
    assert rc == 0, "machineserver exited %s on SIGTERM:\n%s" % (rc, d.stderr_tail())


def _require_binary():
    path = os.path.join(BUILD, "machineserver")
    if not os.access(path, os.X_OK):
        pytest.fail("no daemon at %s: run make first (or set MS_BUILD)" % path)


@pytest.fixture(scope="session")
def workroot():
    d = tempfile.mkdtemp(prefix="ms-it-")
    yield d
    # MS_KEEP_WORK=1 keeps configs, data, daemon logs (and core files) for a post-mortem.
    if os.environ.get("MS_KEEP_WORK") != "1":
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def daemon(workroot):
    """The shared daemon without auth. Tests delete the sessions they create."""
    _require_binary()
    d = Daemon(os.path.join(workroot, "plain")).start()
    yield d
    _stop_checked(d)


@pytest.fixture
def clean(daemon):
    """Gives the shared daemon and deletes every session afterwards."""
    yield daemon
    daemon.delete_all_sessions()


API_KEY = "it-key-" + uuid.uuid4().hex
JWT_SECRET = "it-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def auth_daemon(workroot):
    _require_binary()
    d = Daemon(os.path.join(workroot, "auth"),
               {"auth": {"enabled": True, "api_keys": [API_KEY], "jwt_secret": JWT_SECRET}},
               api_key=API_KEY).start()
    yield d
    _stop_checked(d)


@pytest.fixture(scope="session")
def small_daemon(workroot):
    """Small limits: 2 sessions, 64 KiB uploads."""
    _require_binary()
    d = Daemon(os.path.join(workroot, "small"),
               {"resources": {"max_sessions": 2, "max_upload_bytes": 65536}}).start()
    yield d
    _stop_checked(d)


@pytest.fixture
def own_daemon(workroot):
    """A fresh daemon for tests that kill things; a factory so a test can restart it on the same data."""
    made = []

    def make(overrides=None, name=None):
        _require_binary()
        d = Daemon(os.path.join(workroot, name or ("own-" + uuid.uuid4().hex[:8])), overrides)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.alive():
            d.delete_all_sessions()
        d.stop()
    for d in made:
        reports = d.sanitizer_reports()
        assert not reports, "sanitizer reports in %s:\n%s" % (d.stderr_path, "\n".join(reports[:20]))


def _build(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    elf = os.path.join(out_dir, "mstest.elf")
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb", "-Os", "-g", "-ffreestanding",
                    "-nostdlib", "-nostartfiles", "-Wall", "-Wextra", "-Werror",
                    "-Wl,--no-warn-rwx-segments", "-T", os.path.join(FW_SRC, "link.ld"),
                    "-o", elf, os.path.join(FW_SRC, "mstest.c")], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "ihex", elf, os.path.join(out_dir, "mstest.hex")], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", elf, os.path.join(out_dir, "mstest.bin")], check=True)
    return elf


class Firmware:
    def __init__(self, elf):
        self.elf = elf
        base = elf[:-4]
        self.hex = base + ".hex"
        self.bin = base + ".bin"

    def read(self, kind="elf"):
        with open({"elf": self.elf, "hex": self.hex, "bin": self.bin}[kind], "rb") as f:
            return f.read()


@pytest.fixture(scope="session")
def fw(workroot):
    """Our test firmware (tests/integration/fw/mstest.c) built with arm-none-eabi-gcc."""
    return Firmware(_build(os.path.join(workroot, "fw")))


@pytest.fixture(scope="session")
def hello_fw(workroot):
    """firmware/mps2-hello from `make firmware` (built here if the build dir lacks it)."""
    elf = os.path.join(BUILD, "firmware", "mps2-hello.elf")
    if not os.path.exists(elf):
        out = os.path.join(workroot, "fwbuild")
        subprocess.run(["make", "-s", "-C", os.path.join(REPO, "firmware"), "BUILD=" + out], check=True)
        elf = os.path.join(out, "mps2-hello.elf")
    return Firmware(elf)
