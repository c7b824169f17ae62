"""Reference servers for the differential test: Debian's knotd (3.2) and nsd (4.6), each run in
the foreground as the current user, on 127.0.0.1:<free port>, with a generated configuration and
all state (rundir, storage, pid files) in a private temporary directory.

Both serve the zone files given as {origin: path}. Readiness is an SOA answer for the first zone
(bounded wait); stop() sends SIGTERM and reaps the process (killing it after a bound).
"""

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import dns.message

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
NSD = shutil.which("nsd") or "/usr/sbin/nsd"

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


def free_port():
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port found")


def available():
    """Names of the missing reference binaries ([] when both are installed)."""
    return [b for b in (KNOTD, NSD) if not Path(b).is_file()]


class RefServer:
    name = "?"

    def __init__(self, zones, workdir):
        self.zones = {o.rstrip(".") + ".": Path(p).resolve() for o, p in zones.items()}
        self.dir = Path(workdir) / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = None
        self.proc = None
        self.log_path = self.dir / "stderr.log"

    def command(self):
        raise NotImplementedError

    def write_config(self):
        raise NotImplementedError

    def start(self):
        self.port = free_port()
        self.write_config()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.dir,
        )
        first = next(iter(self.zones))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log()}"
                )
            if self._answers_soa(first):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready in {START_TIMEOUT_S}s:\n{self.log()}")

    def _answers_soa(self, origin):
        q = dns.message.make_query(origin, "SOA", flags=0)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(0.2)
            s.sendto(q.to_wire(), ("127.0.0.1", self.port))
            data, _ = s.recvfrom(65535)
            r = dns.message.from_wire(data)
            return r.rcode() == 0 and len(r.answer) == 1
        except Exception:
            return False
        finally:
            s.close()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Knot(RefServer):
    name = "knot"

    def write_config(self):
        d = self.dir
        zones = "".join(
            f"  - domain: {o}\n    file: \"{p}\"\n" for o, p in self.zones.items()
        )
        (d / "knot.conf").write_text(
            f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{d}"

control:
    listen: "{d}/knot.sock"

log:
  - target: stderr
    any: info

template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off

zone:
{zones}"""
        )

    def command(self):
        return [KNOTD, "-c", str(self.dir / "knot.conf")]


class Nsd(RefServer):
    name = "nsd"

    def write_config(self):
        d = self.dir
        zones = "".join(f"zone:\n    name: {o}\n    zonefile: \"{p}\"\n" for o, p in self.zones.items())
        (d / "nsd.conf").write_text(
            f"""server:
    ip-address: 127.0.0.1@{self.port}
    port: {self.port}
    server-count: 1
    zonesdir: "{d}"
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    zonelistfile: "{d}/zone.list"
    database: ""
    username: ""
    chroot: ""
    verbosity: 1
    zonefiles-write: 0
    minimal-responses: yes

remote-control:
    control-enable: no

{zones}"""
        )

    def command(self):
        return [NSD, "-d", "-c", str(self.dir / "nsd.conf")]
