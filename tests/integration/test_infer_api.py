"""
Peripheral inference through the daemon: a rehost session runs Debian's
micro:bit MicroPython with no board file and no SVD (only a CPU), the
inferred peripherals, the MMIO log and the device map are served, a
correction by hand is applied or refused with a clear error, an exported
device map given back as board_config.models makes a second session infer
nothing, SVDs are uploaded files (never host paths), and unknown
board_config keys are refused.
"""
import json
import os

import pytest

from conftest import WS, assert_error

MICROPYTHON = "/usr/share/firmware-microbit-micropython/firmware.hex"
SVD = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "svd", "Nordic", "nrf51.svd")


def rehost_session(d, board_config):
    r = d.post("/api/v1/sessions", {"backend": "rehost", "board_config": board_config})
    assert r.status == 201, r
    return r.json()


def boot_micropython(d, board_config):
    if not os.path.isfile(MICROPYTHON):
        pytest.skip("firmware-microbit-micropython is not installed")
    s = rehost_session(d, board_config)
    r = d.upload(open(MICROPYTHON, "rb").read(), "micropython.hex")
    assert r.status == 201, r
    assert d.post("/api/v1/sessions/%s/program" % s["id"], {"program_id": r.json()["id"]}).status == 200
    ws = d.console(s["id"])
    assert d.post("/api/v1/sessions/%s/poweron" % s["id"]).status == 200
    ws.read_until(b">>> ", timeout=30)
    ws.send(b"print(1+2)\r")
    ws.read_until(b"\r\n3\r\n>>> ", timeout=30)
    return s, ws


def events(d, sid):
    r = d.get("/api/v1/sessions/%s/events?limit=10000" % sid)
    assert r.status == 200, r
    return r.json()


def test_zero_config_micropython_and_the_inference_views(clean):
    d = clean
    s, ws = boot_micropython(d, {"cpu": "cortex-m0"})
    sid = s["id"]

    r = d.get("/api/v1/sessions/%s/peripherals" % sid)
    assert r.status == 200, r
    periph = r.json()["peripherals"]
    inferred = [p for p in periph if p.get("source") == "rules"]
    assert len(inferred) >= 5, periph
    reg = inferred[0]["registers"][0]
    for key in ("offset", "category", "model", "value", "reset", "confidence", "reads", "writes"):
        assert key in reg, reg
    uart = [p for p in periph if p.get("uart")]
    assert uart, "the UART was not recognised from its access pattern"

    r = d.get("/api/v1/sessions/%s/mmio?limit=5" % sid)
    assert r.status == 200, r
    mm = r.json()
    assert 0 < len(mm["entries"]) <= 5
    assert {"pc", "addr", "size", "dir", "value"} <= set(mm["entries"][0])
    assert d.get("/api/v1/sessions/%s/mmio?limit=0" % sid).status == 400
    assert d.get("/api/v1/sessions/%s/mmio?from=-1" % sid).status == 400

    kinds = {e["type"] for e in events(d, sid)}
    assert "infer.region" in kinds and "infer.poll" in kinds, kinds

    # Corrections: unknown register 404, bad field 400, a good one is applied.
    assert_error(d.request("PATCH", "/api/v1/sessions/%s/peripherals" % sid,
                           {"addr": "0x5fff0000", "model": "memory"}), 404)
    assert_error(d.request("PATCH", "/api/v1/sessions/%s/peripherals" % sid,
                           {"addr": reg["addr"], "model": "no-such-model"}), 400)
    assert_error(d.request("PATCH", "/api/v1/sessions/%s/peripherals" % sid, "{bad"), 400)
    r = d.request("PATCH", "/api/v1/sessions/%s/peripherals" % sid, {"addr": reg["addr"], "name": "MYREG"})
    assert r.status == 200, r
    names = [g.get("name") for p in r.json()["peripherals"] for g in p["registers"] if g["addr"] == reg["addr"]]
    assert names == ["MYREG"], names

    r = d.get("/api/v1/sessions/%s/device_map" % sid)
    assert r.status == 200, r
    device_map = r.json()
    ws.close()

    # A second session started from the exported map decides nothing.
    s2, ws2 = boot_micropython(d, {"cpu": "cortex-m0", "models": device_map})
    kinds2 = [e["type"] for e in events(d, s2["id"]) if e["type"].startswith("infer.")]
    assert "infer.region" not in kinds2 and "infer.poll" not in kinds2, kinds2
    ws2.close()


def test_board_config_is_checked(clean):
    d = clean
    for bc, status in (({"cpu": "cortex-m0", "svd": "/etc/passwd"}, 400),
                       ({"cpu": "cortex-m0", "svd": ["prog_doesnotexist"]}, 400),
                       ({"cpu": "cortex-m0", "svd": 7}, 400),
                       ({"cpu": "cortex-m0", "models": "not a map"}, 400),
                       ({"cpu": "cortex-m0", "foo": 1}, 400),
                       ({"cpu": "cortex-m99"}, 400)):
        r = d.post("/api/v1/sessions", {"backend": "rehost", "board_config": bc})
        assert_error(r, status)
    # A device map that is not one: refused when the session is created.
    r = d.post("/api/v1/sessions", {"backend": "rehost",
                                   "board_config": {"cpu": "cortex-m0", "models": {"format": "x"}}})
    assert r.status == 400, r


def test_svd_is_an_uploaded_file(clean):
    d = clean
    if not os.path.isfile(SVD):
        pytest.skip("vendor SVDs not found beside the project (../shared/svd)")
    r = d.upload(open(SVD, "rb").read(), "nrf51.svd")
    assert r.status == 201, r
    s, ws = boot_micropython(d, {"cpu": "cortex-m0", "svd": r.json()["id"]})
    periph = d.get("/api/v1/sessions/%s/peripherals" % s["id"]).json()["peripherals"]
    named = [g["name"] for p in periph for g in p["registers"] if g.get("name")]
    assert named, "no register got its SVD name"
    ws.close()


def test_mmio_websocket_streams_accesses(clean):
    d = clean
    s, ws = boot_micropython(d, {"cpu": "cortex-m0"})
    mm = WS(d.port, "/api/v1/sessions/%s/stream/mmio?from=end" % s["id"])
    assert mm.status == 101, mm.handshake
    ws.send(b"print(4+5)\r")
    op, data = mm.recv_frame(20)
    assert op == 1, (op, data)
    batch = json.loads(data)
    assert batch["entries"] and {"pc", "addr", "dir", "value"} <= set(batch["entries"][0])
    assert d.delete("/api/v1/sessions/" + s["id"]).status == 200
    for _ in range(1000):
        op, data = mm.recv_frame(20)
        if op == 8:
            break
    assert op == 8, "the MMIO stream stayed open after its session was deleted"
    # A QEMU session has no MMIO log to stream.
    q = d.create_session("mps2-an385")
    r = d.get("/api/v1/sessions/%s/stream/mmio" % q["id"],
              headers={"Upgrade": "websocket", "Connection": "Upgrade",
                       "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert_error(r, 501)


def test_inject_step_and_run_for(clean):
    d = clean
    s, ws = boot_micropython(d, {"cpu": "cortex-m0"})
    sid = s["id"]
    periph = d.get("/api/v1/sessions/%s/peripherals" % sid).json()["peripherals"]
    reg = [g for p in periph if p.get("source") == "rules" for g in p["registers"]][0]
    inject = "/api/v1/sessions/%s/inject" % sid
    assert_error(d.post(inject, {"kind": "warp"}), 400)
    assert_error(d.post(inject, {"kind": "gpio", "addr": "0x20000000", "mask": 1, "value": 1}), 404)
    assert_error(d.post(inject, {"kind": "gpio", "addr": reg["addr"], "mask": 1, "value": 1, "irq": 999}), 400)
    assert_error(d.post(inject, {"kind": "gpio", "addr": reg["addr"], "mask": 1, "value": 1, "irq": 63}), 409)
    r = d.post(inject, {"kind": "gpio", "addr": reg["addr"], "mask": 1, "value": 1})
    assert r.status == 200, r
    assert any(e["type"] == "injected" for e in events(d, sid))

    # Stepping needs a paused session; then it advances exactly, and the guest still answers.
    assert_error(d.post("/api/v1/sessions/%s/step" % sid, {"instructions": 100}), 409)
    assert d.post("/api/v1/sessions/%s/pause" % sid).status == 200
    assert_error(d.post("/api/v1/sessions/%s/step" % sid, {"instructions": -1}), 400)
    assert_error(d.post("/api/v1/sessions/%s/step" % sid, {}), 400)
    assert d.post("/api/v1/sessions/%s/step" % sid, {"instructions": 1000}).status == 200
    assert d.post("/api/v1/sessions/%s/run_for" % sid, {"virtual_ns": 1000000}).status == 200
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    ws.send(b"print(6*7)\r")
    ws.read_until(b"\r\n42\r\n>>> ", timeout=30)
    ws.close()

    # QEMU sessions do not offer these operations.
    q = d.create_session("mps2-an385")
    assert_error(d.post("/api/v1/sessions/%s/step" % q["id"], {"instructions": 1}), 501)
    assert_error(d.post("/api/v1/sessions/%s/inject" % q["id"], {"kind": "gpio"}), 501)


BUILD_FW = os.path.join(os.environ.get("MS_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build")),
                        "firmware")
SVD_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "svd")
# The GPIO + external interrupt images: button input register and line, the
# level of a press and of a release, the pending flag and its model once
# the handler acknowledged it, the console lines.
GPIO = {
    "stm32f1-exti": dict(cpu="cortex-m3", svd="STMicro/STM32F103xx.svd", addr="0x40010808", mask=1,
                         irq=6, press=1, release=0, flag="0x40010414", acked="w1c",
                         ready=b"exti ready\r\n", end=b"level 1\r\nirqs 2\r\nPASS\r\n"),
    "nrf52-gpiote": dict(cpu="cortex-m4", svd="Nordic/nrf52.svd", addr="0x50000510", mask=0x2000,
                         irq=6, press=0, release=0x2000, flag="0x40006100", acked="memory",
                         ready=b"gpiote ready\r\n", end=b"level 0\r\nirqs 2\r\nPASS\r\n"),
}


@pytest.mark.parametrize("name", sorted(GPIO))
@pytest.mark.parametrize("mode", ["zero", "svd"])
def test_gpio_external_interrupt_through_inject(clean, name, mode):
    """The GPIO corpus images through the daemon: each injected edge
    interrupts once (the handler finds its pending flag set, acknowledges
    it and reads the level), and an edge after the firmware disabled the
    line in the peripheral does not, while its level still reads back. The
    session is paused between events and advanced by run_for, so the order
    of events and firmware is the same on any machine."""
    d = clean
    g = GPIO[name]
    fw = os.path.join(BUILD_FW, "infer-%s.elf" % name)
    if not os.path.isfile(fw):
        pytest.skip("corpus firmware not built (make firmware)")
    bc = {"cpu": g["cpu"]}
    if mode == "svd":
        svd = os.path.join(SVD_DIR, g["svd"])
        if not os.path.isfile(svd):
            pytest.skip("vendor SVDs not found beside the project (../shared/svd)")
        r = d.upload(open(svd, "rb").read(), os.path.basename(svd))
        assert r.status == 201, r
        bc["svd"] = r.json()["id"]
    s = rehost_session(d, bc)
    sid = s["id"]
    r = d.upload(open(fw, "rb").read(), name + ".elf")
    assert r.status == 201, r
    assert d.post("/api/v1/sessions/%s/program" % sid, {"program_id": r.json()["id"]}).status == 200
    ws = d.console(sid)
    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    out = ws.read_until(g["ready"], timeout=30)
    assert d.post("/api/v1/sessions/%s/pause" % sid).status == 200
    d.wait_state(sid, "paused")
    inject = "/api/v1/sessions/%s/inject" % sid
    run_for = "/api/v1/sessions/%s/run_for" % sid

    def edge(level, irq=g["irq"]):
        return d.post(inject, {"kind": "gpio", "addr": g["addr"], "mask": g["mask"], "value": level, "irq": irq})

    def reg(addr):
        periph = d.get("/api/v1/sessions/%s/peripherals" % sid).json()["peripherals"]
        return {x["addr"]: x for p in periph for x in p["registers"]}[addr]

    # An interrupt the firmware never enabled is refused, and changes nothing.
    assert_error(edge(g["press"], irq=g["irq"] + 1), 409)
    assert d.post(run_for, {"virtual_ns": 1000000}).status == 200

    r = edge(g["press"])
    assert r.status == 200
    # The answer says what came of the event: here, the interrupt was raised.
    assert r.json()["inject"]["raised"] is True, r.json()
    assert r.json()["inject"]["flag"] == {"addr": g["flag"], "mask": "0x1"}, r.json()
    assert d.post(run_for, {"virtual_ns": 1000000}).status == 200
    out = ws.read_until(b"button %d\r\n" % (g["press"] != 0), timeout=30, start=out)
    assert edge(g["release"]).status == 200
    assert d.post(run_for, {"virtual_ns": 1000000}).status == 200
    out = ws.read_until(b"button %d\r\nmasked\r\n" % (g["release"] != 0), timeout=30, start=out)

    # The handler acknowledged its flag: clear now, the way the part clears it.
    flag = reg(g["flag"])
    assert flag["model"] == g["acked"] and flag["value"] == "0x0", flag
    assert reg(g["addr"])["category"] == "status"
    # Disabled in the peripheral: the edge sets the flag but does not interrupt, and says why.
    r = edge(g["press"])
    assert r.status == 200
    assert r.json()["inject"]["raised"] is False and r.json()["inject"]["reason"], r.json()
    assert reg(g["flag"])["value"] == "0x1"
    infer = [e["data"] for e in events(d, sid) if e["type"] == "infer.inject"]
    assert [e["raised"] for e in infer] == [True, True, False], infer
    assert infer[0]["flag"] == {"addr": g["flag"], "mask": "0x1"}, infer[0]

    assert d.post("/api/v1/sessions/%s/poweron" % sid).status == 200
    out = ws.read_until(g["end"], timeout=30, start=out)
    assert b"FAIL" not in out, out
    ws.close()
