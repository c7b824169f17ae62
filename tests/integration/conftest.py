"""Fixtures for the integration suite.

- `backend`: session-scoped, parametrised over zonejetd's I/O backends (`uring`, `mmsg`); a
  backend the kernel refuses (zonejetd says io_uring is unavailable) is skipped, not failed.
- `image`: the bundled zones (zones/*.zone) compiled once per session with zonejet-compile.
- `server`: zonejetd on 127.0.0.1:<free port> serving that image, with NSID, identity and
  version configured, 2 workers. One per backend per session; stopped with SIGTERM at the end,
  and its exit code must be 0. A server that dies during a test is recorded and restarted (so
  one crash fails one test), and the session fails at teardown.
- `bare_server`: the same zones loaded as text (`--zones zones/`), nothing optional configured
  (no NSID, identity or version: those must then be absent / REFUSED).
- `parent_server`: example.com alone (its child sub.example.com not served: referrals).
- `big_server`: `--edns-payload 4096`.
- `bounds_server`: tests/integration/zones/bounds.example.zone (chain-length bounds).
- `query`: bound `Client.query` of `server`; `tcp`: parametrised False/True (UDP and TCP).
On a test failure, the stderr of every zonejetd the test used is attached to the report.

To check the tests themselves, ZJ_IT_REF=knot (or nsd) runs the query tests against that
reference server instead of zonejetd (tests of zonejet-only behaviour then fail, as expected).
"""

import shutil

import pytest

import zjtest
from zjtest import ZJServer, ServerUnavailable, BUNDLED, NSID, IDENTITY, VERSION

BACKENDS = ["uring", "mmsg"]


def pytest_configure(config):
    config._zj_summaries = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for line in getattr(config, "_zj_summaries", []):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def zj_summaries(pytestconfig):
    """Lines printed at the end of the run (differential summaries)."""
    return pytestconfig._zj_summaries


REF = zjtest.REF


class _RefAdapter:
    """A reference server (differential/refservers.py) dressed as a ZJServer, for ZJ_IT_REF."""

    def __init__(self, ref, backend):
        self.ref, self.backend, self.name, self.crashes = ref, backend, ref.name, []

    port = property(lambda self: self.ref.port)

    def alive(self):
        return self.ref.proc.poll() is None

    def restart_if_dead(self):
        return False

    def log_tail(self, n=6000):
        return self.ref.log()[-n:]

    def stop(self, check=False):
        self.ref.stop()
        return 0

    def client(self):
        return zjtest.Client(self)


@pytest.fixture(scope="session", autouse=True)
def _binaries():
    if not REF and not zjtest.have_binaries():
        pytest.fail(
            f"zonejetd / zonejet-compile not found in {zjtest.BUILD_DIR} "
            "(build first, or set ZJ_BUILD_DIR)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("zj")


@pytest.fixture(scope="session")
def image(workdir):
    if REF:
        return None
    return zjtest.compile_image(workdir / "bundled.img", list(BUNDLED.values()))


@pytest.fixture(scope="session")
def parent_image(workdir):
    if REF:
        return None
    return zjtest.compile_image(workdir / "parent.img", [BUNDLED["example.com."]])


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    return request.param


def _serve(workdir, backend, args, name, ready_name="example.com."):
    if REF:
        from differential.refservers import Knot, Nsd
        if name == "big":
            pytest.skip("no --edns-payload equivalent wired for reference servers")
        zones = {"example.com.": BUNDLED["example.com."]} if name == "parent" else BUNDLED
        cls = Knot if REF == "knot" else Nsd
        srv = _RefAdapter(cls(zones, workdir / f"{REF}-{name}-{backend}").start(), backend)
    else:
        srv = ZJServer(args, workdir, backend=backend, name=name, ready_name=ready_name)
        try:
            srv.start()
        except ServerUnavailable as e:
            pytest.skip(str(e))
    yield srv
    rc = srv.stop(check=False)
    assert not srv.crashes, "zonejetd died during the tests:\n" + "\n\n".join(
        f"exit {c}:\n{log}" for c, log in srv.crashes
    )
    assert rc == 0, f"zonejetd exited with {rc} on SIGTERM\n{srv.log_tail()}"


@pytest.fixture(scope="session")
def server(workdir, backend, image):
    args = ["--image", image, "--workers", "2", "--nsid", NSID, "--identity", IDENTITY,
            "--version-string", VERSION]
    yield from _serve(workdir, backend, args, "main")


@pytest.fixture(scope="session")
def bare_server(workdir, backend):
    zdir = workdir / "zones-text"
    if not zdir.exists():
        zdir.mkdir()
        for p in BUNDLED.values():
            shutil.copy(p, zdir / p.name)
    yield from _serve(workdir, backend, ["--zones", zdir, "--workers", "1"], "bare")


@pytest.fixture(scope="session")
def parent_server(workdir, backend, parent_image):
    yield from _serve(workdir, backend, ["--image", parent_image, "--workers", "1"], "parent")


@pytest.fixture(scope="session")
def big_server(workdir, backend, image):
    args = ["--image", image, "--workers", "1", "--edns-payload", "4096"]
    yield from _serve(workdir, backend, args, "big")


@pytest.fixture(scope="session")
def bounds_server(workdir, backend):
    if REF:
        pytest.skip("bounds zone not wired for reference servers")
    zone = zjtest.TEST_ZONES_DIR / "bounds.example.zone"
    yield from _serve(workdir, backend, ["--zones", zone, "--workers", "1"], "bounds",
                      ready_name="bounds.example.")


def _client(srv):
    srv.restart_if_dead()
    return srv.client()


@pytest.fixture
def client(server):
    return _client(server)


@pytest.fixture
def bare_client(bare_server):
    return _client(bare_server)


@pytest.fixture
def parent_client(parent_server):
    return _client(parent_server)


@pytest.fixture
def big_client(big_server):
    return _client(big_server)


@pytest.fixture
def bounds_client(bounds_server):
    return _client(bounds_server)


@pytest.fixture
def query(client):
    return client.query


@pytest.fixture(params=[False, True], ids=["udp", "tcp"])
def tcp(request):
    return request.param


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    seen = set()
    for v in getattr(item, "funcargs", {}).values():
        srv = v if isinstance(v, ZJServer) else getattr(v, "server", None)
        if srv is None and hasattr(v, "__self__"):
            srv = getattr(v.__self__, "server", None)
        if isinstance(srv, (ZJServer, _RefAdapter)) and id(srv) not in seen:
            seen.add(id(srv))
            rep.sections.append(
                (f"zonejetd stderr ({srv.name}, {srv.backend}, port {srv.port})", srv.log_tail())
            )
