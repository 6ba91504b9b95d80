"""
Shared pieces of the benchmarks: start a machineserver on a free loopback
port with a throw-away data directory, talk HTTP and WebSocket to it, build
the test firmware (tests/integration/fw/mstest.c), summarise samples.

Standard library only; the benchmarks print figures, they assert nothing.
"""
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import tempfile
import time
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.abspath(os.environ.get("BUILD", os.environ.get("MS_BUILD", os.path.join(REPO, "build"))))
FW_SRC = os.path.join(REPO, "tests", "integration", "fw")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def build_firmware(out_dir):
    elf = os.path.join(out_dir, "mstest.elf")
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m3", "-mthumb", "-Os", "-ffreestanding", "-nostdlib",
                    "-nostartfiles", "-Wl,--no-warn-rwx-segments", "-T", os.path.join(FW_SRC, "link.ld"),
                    "-o", elf, os.path.join(FW_SRC, "mstest.c")], check=True)
    return elf


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(xs):
    return statistics.median(xs)


class Daemon:
    def __init__(self, max_sessions=16, extra_yaml=""):
        self.tmp = tempfile.mkdtemp(prefix="ms-bench-")
        gmin = 30000 + (os.getpid() % 200) * 100
        self.port = free_port()
        while gmin <= self.port <= gmin + 400:  # the daemon refuses its own port in the gdb range
            self.port = free_port()
        self.cfg = os.path.join(self.tmp, "config.yaml")
        with open(self.cfg, "w") as f:
            f.write("server:\n  port: %d\n  bind: 127.0.0.1\n  data_dir: %s\n"
                    "auth:\n  enabled: false\nbackends:\n  qemu:\n    enabled: true\n"
                    "resources:\n  max_sessions: %d\n  session_timeout: 0\n  gdb_port_min: %d\n  gdb_port_max: %d\n%s"
                    % (self.port, os.path.join(self.tmp, "data"), max_sessions, gmin, gmin + 400, extra_yaml))
        self.log = open(os.path.join(self.tmp, "stderr.log"), "wb")
        self.proc = subprocess.Popen([os.path.join(BUILD, "machineserver"), "--config", self.cfg],
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.req("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daemon did not start; see " + self.log.name)
            time.sleep(0.05)

    def req(self, method, path, body=None, headers=None, conn=None):
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
        finally:
            if conn is None:
                c.close()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def upload(self, path):
        boundary = "b" + uuid.uuid4().hex
        with open(path, "rb") as f:
            data = f.read()
        body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n" % (boundary, os.path.basename(path))).encode()
                + data + ("\r\n--%s--\r\n" % boundary).encode())
        st, j = self.req("POST", "/api/v1/programs", body,
                         {"Content-Type": "multipart/form-data; boundary=" + boundary})
        assert st == 201, (st, j)
        return j

    def children(self):
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                        out.append(int(pid))
            except (OSError, ValueError, IndexError):
                pass
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class WS:
    """Minimal RFC 6455 client for the console stream."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.sock.recv(4096)
            if not d:
                raise RuntimeError("websocket refused")
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        self.off = 0
        self.frames = 0
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(head.decode("latin-1"))

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
        self.sock.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        # self.buf[self.off:] is unread; compact only when the read part is large,
        # so many small frames cost linear time, not quadratic.
        while len(self.buf) - self.off < n:
            if self.off > (1 << 16):
                del self.buf[:self.off]
                self.off = 0
            d = self.sock.recv(1 << 20)
            if not d:
                raise EOFError
            self.buf += d

    def recv(self):
        """Payload of the next data frame (control frames skipped)."""
        while True:
            self._need(2)
            o = self.off
            b0, b1 = self.buf[o], self.buf[o + 1]
            n, hl = b1 & 0x7F, 2
            if n == 126:
                self._need(4)
                o = self.off
                n, hl = struct.unpack("!H", self.buf[o + 2:o + 4])[0], 4
            elif n == 127:
                self._need(10)
                o = self.off
                n, hl = struct.unpack("!Q", self.buf[o + 2:o + 10])[0], 10
            self._need(hl + n)
            o = self.off
            payload = bytes(self.buf[o + hl:o + hl + n])
            self.off = o + hl + n
            op = b0 & 0x0F
            if op in (1, 2):
                self.frames += 1
                return payload
            if op == 8:
                raise EOFError

    def read_until(self, token, got=b""):
        got = bytearray(got)
        while token not in got:
            got += self.recv()
        return bytes(got)

    def close(self):
        self.sock.close()


def boot(d, prog_id):
    """Create an mps2-an385 session, load prog_id, power on; returns the session id."""
    st, s = d.req("POST", "/api/v1/sessions", {"backend": "qemu", "board_config": {"board": "mps2-an385"}})
    assert st == 201, (st, s)
    st, j = d.req("POST", "/api/v1/sessions/%s/program" % s["id"], {"program_id": prog_id})
    assert st == 200, (st, j)
    st, j = d.req("POST", "/api/v1/sessions/%s/poweron" % s["id"])
    assert st == 200, (st, j)
    return s["id"], j


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024
    return "%d cores, %s, %d MiB RAM, %s" % (os.cpu_count(), cpu, mem, os.uname().release)
