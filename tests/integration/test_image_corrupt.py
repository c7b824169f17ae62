"""zonejetd refuses bad images and bad zone files at start-up (validate once, at the edge).

For each damaged image, `zonejetd --image FILE` must exit by itself, promptly, with a non-zero
status (not a signal, no sanitizer report) and an error line on stderr naming the file; it must
never start answering. Cases: empty file, truncated images (7, 8, 12, 16, 64 octets, half, all
but the last octet), one flipped byte in the payload (several positions), the version field at
offset 8 (little-endian u32) set to version+1, 0 and 0xFFFFFFFF, random garbage with and without
the right magic, a directory, a missing path. `zonejet-compile --dump` on the same files also
fails cleanly. `zonejetd --zones` with a zone that has a syntax error refuses to start with a
`file:line: reason` line. A good image still starts (control case).
"""

import random
import struct
import subprocess
import time

import pytest

import zjtest
from zjtest import ZJServer, free_port

REFUSE_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def good_image(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    return zjtest.compile_image(d / "good.img", list(zjtest.BUNDLED.values()))


def _damaged(good, case, tmp_path):
    data = bytearray(good.read_bytes())
    n = len(data)
    rnd = random.Random(case)
    if case.startswith("trunc-"):
        arg = case[6:]
        k = {"half": n // 2, "minus1": n - 1}.get(arg)
        data = data[: int(arg) if k is None else k]
    elif case.startswith("flip-"):
        pos = {"64": 64, "third": n // 3, "half": n // 2, "two-thirds": 2 * n // 3,
               "last": n - 1}[case[5:]]
        data[pos] ^= 0x5A
    elif case.startswith("version-"):
        (cur,) = struct.unpack_from("<I", data, 8)
        v = {"plus1": cur + 1, "zero": 0, "max": 0xFFFFFFFF}[case[8:]]
        if v == cur:
            v = cur + 2
        struct.pack_into("<I", data, 8, v & 0xFFFFFFFF)
    elif case == "empty":
        data = b""
    elif case == "garbage":
        data = bytes(rnd.getrandbits(8) for _ in range(4096))
    elif case == "garbage-with-magic":
        data = data[:8] + bytes(rnd.getrandbits(8) for _ in range(n - 8))
    elif case == "zeros-after-header":
        data = data[:16] + bytes(n - 16)
    else:
        raise ValueError(case)
    p = tmp_path / f"{case}.img"
    p.write_bytes(bytes(data))
    return p


CASES = ["empty", "trunc-7", "trunc-8", "trunc-12", "trunc-16", "trunc-64", "trunc-half",
         "trunc-minus1", "flip-64", "flip-third", "flip-half", "flip-two-thirds", "flip-last",
         "version-plus1", "version-zero", "version-max", "garbage", "garbage-with-magic",
         "zeros-after-header"]


def assert_refuses(args, tmp_path, must_mention):
    """Start zonejetd with args; it must exit non-zero by itself and never answer."""
    port = free_port()
    cmd = [str(zjtest.ZONEJETD), "--listen", f"127.0.0.1:{port}", "--io", "mmsg", *map(str, args)]
    log = tmp_path / "stderr.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        probe = ZJServer([], tmp_path)
        probe.port = port
        deadline = time.monotonic() + REFUSE_TIMEOUT_S
        answered = False
        while proc.poll() is None and time.monotonic() < deadline:
            if probe._probe():
                answered = True
                break
            time.sleep(0.05)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            text = log.read_text(errors="replace")
            pytest.fail(f"zonejetd {'answered queries' if answered else 'kept running'} with "
                        f"{args}\n--- stderr ---\n{text}")
    text = log.read_text(errors="replace")
    rc = proc.returncode
    assert rc > 0, f"exit status {rc} (want > 0; negative = killed by signal)\n{text}"
    assert "Sanitizer" not in text and "runtime error" not in text, text
    assert text.strip(), "no error line on stderr"
    assert must_mention in text, f"the error does not name {must_mention!r}:\n{text}"
    return text


@pytest.mark.parametrize("case", CASES)
def test_server_refuses_damaged_image(good_image, tmp_path, case):
    bad = _damaged(good_image, case, tmp_path)
    assert_refuses(["--image", bad], tmp_path, bad.name)


@pytest.mark.parametrize("case", ["trunc-half", "flip-half", "version-plus1", "garbage"])
def test_dump_refuses_damaged_image(good_image, tmp_path, case):
    bad = _damaged(good_image, case, tmp_path)
    p = subprocess.run([str(zjtest.COMPILER), "--dump", str(bad)], capture_output=True,
                       timeout=30)
    assert p.returncode > 0, f"exit {p.returncode}"
    assert b"Sanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr
    assert p.stderr.strip()


def test_server_refuses_missing_image(tmp_path):
    assert_refuses(["--image", tmp_path / "missing.img"], tmp_path, "missing.img")


def test_server_refuses_directory_as_image(tmp_path):
    d = tmp_path / "adir.img"
    d.mkdir()
    assert_refuses(["--image", d], tmp_path, "adir.img")


def test_server_refuses_bad_zone_text(tmp_path):
    zdir = tmp_path / "zones"
    zdir.mkdir()
    bad = zdir / "bad.example.zone"
    bad.write_text("$ORIGIN bad.example.\n$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n"
                   "@ IN NS ns1\nns1 IN A 192.0.2.300\n")
    text = assert_refuses(["--zones", zdir], tmp_path, "bad.example.zone")
    assert "bad.example.zone:5: " in text, f"want a 'file:5: reason' line:\n{text}"


def test_good_image_starts(good_image, tmp_path):
    srv = ZJServer(["--image", good_image, "--workers", "1"], tmp_path, backend="mmsg")
    srv.start()
    try:
        srv.client().alive_check()
    finally:
        srv.stop()
