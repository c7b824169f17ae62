"""Health checks behind routing policies (docs/policies.md), against the real zonejetd, and
policy files at reload.

The health.test zone (tests/integration/policy/health.test.zone, served with --zones) has its
policy file written from policy/health.test.policy.in, whose checks probe endpoints this module
starts on 127.0.0.1: a TCP listener that stays up ("live"), a port nothing listens on ("dead"), a
TCP listener the tests stop and start ("flip") and an HTTP server whose status and body per path
the tests change ("web503" on /status, "webbody" on /body with match=). Every check has interval
1 s and threshold 2. Health state is read by the answer path, whatever the I/O backend: these
tests run once, on the default backend (the timing tests cost seconds each).

Checks:
- failover on a TCP check, an HTTP status check (503 is unhealthy) and an HTTP body match (the
  string missing from the body is unhealthy): the primary answers while its endpoint is up;
  after the endpoint goes down the secondary answers, not sooner than one probe interval
  ((threshold - 1) x interval, halved for scheduling slack) and within threshold x interval +
  timeout + 5 s; the primary answers again after the endpoint comes back, within the same
  bounds; meanwhile `zonejet-ctl status` shows the same image checksum (a health change needs
  no reload) and `zonejet-ctl health` shows the check's state and last result ("connect
  refused", "HTTP 503", "match not found");
- both failover sets unhealthy: all are treated as healthy, the primary answers;
- check kinds: calculated (1 of live,dead: healthy; 2 of live,dead: unhealthy), inverted (dead
  port: healthy; live port: unhealthy), disabled (dead port: healthy);
- weighted: every non-zero set unhealthy -> only the zero-weight set; one non-zero set healthy
  -> only it (never the zero-weight set); every set unhealthy -> all treated as healthy, the
  non-zero sets answer and the zero-weight one does not;
- multivalue: 9 healthy of 12 -> 8 distinct healthy values per answer, never an unhealthy one;
  2 healthy of 10 -> exactly those 2; none healthy of 10 -> 8 distinct of the 10;
- latency: the first region's set unhealthy -> the next region's;
- `zonejet-ctl health` lists every check with its state (live healthy, dead unhealthy) and
  target port;
- reload (--zones, `zonejet-ctl reload`): a policy file edited into something invalid (each of
  several errors) is refused with its file:line, the old image keeps serving (same checksum,
  same answer); a valid edit of only the policy file takes effect (new checksum, new answer).
"""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zjtest
from zjtest import HttpEndpoint, TcpEndpoint, serve_managed

sys.path.insert(0, str(Path(__file__).resolve().parent / "policy"))
import policylib as pl  # noqa: E402

POLICY_DIR = zjtest.HERE / "policy"
CTL = zjtest.BUILD_DIR / "zonejet-ctl"
ORIGIN = "health.test."
INTERVAL_S, THRESHOLD, TIMEOUT_S = 1.0, 2, 0.5
# a flip cannot come before the THRESHOLD-th failed (or passed) probe, (THRESHOLD - 1) intervals
# after the first; 0.2 s leaves room for probe scheduling slack, and a flip after one result
# (0-1 s) would still be caught most of the time
FLIP_MIN_S = (THRESHOLD - 1) * INTERVAL_S - 0.2
FLIP_MAX_S = THRESHOLD * INTERVAL_S + TIMEOUT_S + 5.0
POLL_S = 0.05
BODY_OK = "status: zonejet body ok\n"


def name(owner):
    return f"{owner}.{ORIGIN}"


@pytest.fixture(scope="module")
def endpoints():
    live = TcpEndpoint().start()
    flip = TcpEndpoint().start()
    http = HttpEndpoint({"/status": (200, "fine\n"), "/body": (200, BODY_OK)})
    dead_sock, dead_port = zjtest.closed_port()
    eps = {"live": live, "flip": flip, "http": http, "dead": dead_port}
    yield eps
    live.close()
    flip.close()
    http.close()
    dead_sock.close()


def write_policy(path, eps):
    text = (POLICY_DIR / "health.test.policy.in").read_text()
    for key, port in (("LIVE", eps["live"].port), ("DEAD", eps["dead"]),
                      ("FLIP", eps["flip"].port), ("HTTP", eps["http"].port)):
        text = text.replace(f"@{key}@", str(port))
    assert "@" not in text.replace("@ ", ""), "unfilled placeholder in the policy template"
    path.write_text(text)


@pytest.fixture(scope="module")
def hsrv(tmp_path_factory, endpoints):
    d = tmp_path_factory.mktemp("health")
    zdir = d / "zones"
    zdir.mkdir()
    (zdir / "health.test.zone").write_text((POLICY_DIR / "health.test.zone").read_text())
    write_policy(zdir / "health.test.policy", endpoints)
    ctl_path = d / "ctl.sock"
    gen = serve_managed(d, None, ["--zones", zdir, "--workers", "2", "--control", ctl_path],
                        "health", ready_name=ORIGIN)
    srv = next(gen)
    srv.ctl_path = ctl_path
    srv.sets = pl.read_policy(zdir / "health.test.policy", ORIGIN)
    srv.started = time.monotonic()
    yield srv
    next(gen, None)


@pytest.fixture
def srv(hsrv):
    hsrv.restart_if_dead()
    return hsrv


def ctl(srv, *args):
    return subprocess.run([str(CTL), "--control", str(srv.ctl_path), *map(str, args)],
                          capture_output=True, text=True, timeout=30)


def checksums(srv):
    p = ctl(srv, "status")
    assert p.returncode == 0, f"zonejet-ctl status: {p.returncode}\n{p.stdout}{p.stderr}"
    sums = re.findall(r"checksum ([0-9a-f]{16})", p.stdout)
    assert sums, f"no checksum in status output:\n{p.stdout}"
    return sums


def health_output(srv):
    p = ctl(srv, "health")
    assert p.returncode == 0, f"zonejet-ctl health: exit {p.returncode}\n{p.stdout}{p.stderr}"
    return p.stdout


def check_line(out, check):
    lines = [ln for ln in out.splitlines() if re.search(rf"(^|\s){re.escape(check)}(\s|$)", ln)]
    assert len(lines) == 1, f"want one line for check {check} in `zonejet-ctl health`:\n{out}"
    return lines[0]


def line_state(line):
    """'healthy' / 'unhealthy' as a `zonejet-ctl health` line states it (the word before
    "streak" in the documented format; else the first such word)."""
    m = re.search(r"\b(healthy|unhealthy)\s+streak\b", line, re.I)
    if m:
        return m.group(1).lower()
    if re.search(r"\bunhealthy\b", line, re.I):
        return "unhealthy"
    if re.search(r"\bhealthy\b", line, re.I):
        return "healthy"
    raise AssertionError(f"no healthy/unhealthy state in: {line}")


def answer(srv, owner, tcp=False):
    r = pl.ask1(srv.port, name(owner), tcp=tcp)
    return pl.chosen_set(r, srv.sets[(name(owner), "A")], ORIGIN).ident


def wait_for(srv, owner, want, bound, since=None):
    """Poll until (owner) answers set `want`; returns the seconds since `since` (or the call)."""
    t0 = since if since is not None else time.monotonic()
    got = None
    while True:
        got = answer(srv, owner)
        now = time.monotonic()
        if got == want:
            return now - t0
        if now - t0 > bound:
            raise AssertionError(f"{owner}: still set {got} after {now - t0:.1f}s, want {want}"
                                 f"\n--- zonejetd ---\n{srv.log_tail(3000)}")
        time.sleep(POLL_S)


@pytest.fixture
def dead_down(srv):
    """Wait until the check of the dead port has flipped (the "probe" failover says so)."""
    wait_for(srv, "probe", "s", FLIP_MAX_S + 2, since=srv.started)
    return srv


# --------------------------------------------------------------------------------------------
# failover


def flip_cycle(srv, owner, check, go_down, come_back, down_result):
    sums = checksums(srv)
    assert answer(srv, owner) == "p", f"{owner}: the primary must answer while its target is up"
    go_down()
    t0 = time.monotonic()
    dt = wait_for(srv, owner, "s", FLIP_MAX_S, since=t0)
    assert dt >= FLIP_MIN_S, (
        f"{owner}: flipped to the secondary {dt:.2f}s after the target went down: sooner than "
        f"threshold {THRESHOLD} x interval {INTERVAL_S}s allows")
    for _ in range(5):
        assert answer(srv, owner) == "s", f"{owner}: back to the primary while target is down"
    line = check_line(health_output(srv), check)
    assert line_state(line) == "unhealthy", line
    assert f'last "{down_result}"' in line, f"last result should be {down_result!r}: {line}"
    come_back()
    t1 = time.monotonic()
    dt_up = wait_for(srv, owner, "p", FLIP_MAX_S, since=t1)
    assert dt_up >= FLIP_MIN_S, f"{owner}: back to the primary after {dt_up:.2f}s: too soon"
    assert line_state(check_line(health_output(srv), check)) == "healthy"
    assert checksums(srv) == sums, "the image checksum changed: a health change must not reload"
    return dt, dt_up


def report(zj_summaries, what, times):
    zj_summaries.append(f"policy health: {what}: secondary after {times[0]:.2f}s, primary again "
                        f"after {times[1]:.2f}s (interval {INTERVAL_S}s, threshold {THRESHOLD})")


def test_failover_tcp(srv, endpoints, zj_summaries):
    ep = endpoints["flip"]
    report(zj_summaries, "TCP", flip_cycle(srv, "ftcp", "flip", ep.stop, ep.start,
                                                 "connect refused"))


def test_failover_http_status(srv, endpoints, zj_summaries):
    http = endpoints["http"]

    def down():
        http.routes["/status"] = (503, "unavailable\n")

    def up():
        http.routes["/status"] = (200, "fine\n")

    report(zj_summaries, "HTTP 503", flip_cycle(srv, "f503", "web503", down, up,
                                                      "HTTP 503"))


def test_failover_http_body_match(srv, endpoints, zj_summaries):
    http = endpoints["http"]

    def down():
        http.routes["/body"] = (200, "status: something else entirely\n")

    def up():
        http.routes["/body"] = (200, BODY_OK)

    report(zj_summaries, "HTTP body match", flip_cycle(srv, "fbody", "webbody", down, up,
                                                             "match not found"))


def test_failover_both_unhealthy_primary(dead_down):
    srv = dead_down
    for _ in range(20):
        assert answer(srv, "fboth") == "p", "both sets unhealthy: all count as healthy, " \
                                            "the primary must answer"


@pytest.mark.parametrize("owner,want", [
    ("kany", "p"),      # calculated 1 of live,dead: healthy
    ("kall", "s"),      # calculated 2 of live,dead: unhealthy
    ("kinvdead", "p"),  # inverted, probe fails: healthy
    ("kinvlive", "s"),  # inverted, probe passes: unhealthy
    ("kdis", "p"),      # disabled, dead port: healthy
])
def test_check_kinds(dead_down, owner, want):
    srv = dead_down
    # the checks flip on their own probes: allow one more flip time after "dead" flipped
    wait_for(srv, owner, want, FLIP_MAX_S)
    for _ in range(10):
        assert answer(srv, owner) == want, f"{owner} changed its answer"


# --------------------------------------------------------------------------------------------
# weighted, multivalue, latency with unhealthy sets


def test_weighted_health(dead_down):
    srv = dead_down
    seen = {"wdown": set(), "wup": set(), "wall": set()}
    for owner in seen:
        sets = srv.sets[(name(owner), "A")]
        for r in pl.ask(srv.port, name(owner), n=300):
            seen[owner].add(pl.chosen_set(r, sets, ORIGIN).ident)
    assert seen["wdown"] == {"z"}, f"non-zero sets unhealthy: only the zero-weight set; " \
                                   f"got {seen['wdown']}"
    assert seen["wup"] == {"a"}, f"one healthy non-zero set: only it; got {seen['wup']}"
    assert seen["wall"] == {"a", "b"}, f"all unhealthy = all healthy: a and b, never z; " \
                                       f"got {seen['wall']}"


def mv_values(srv, owner, healthy_ids):
    sets = srv.sets[(name(owner), "A")]
    allv = frozenset().union(*(s.rdatas(ORIGIN) for s in sets))
    healthy = frozenset().union(*(s.rdatas(ORIGIN) for s in sets if s.ident in healthy_ids))
    return allv, healthy


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_multivalue_health(dead_down, tcp):
    srv = dead_down
    n = 100 if not tcp else 30
    cases = [
        ("mvmany", {f"h{i}" for i in range(9)}, 8, True),
        ("mvfew", {"h0", "h1"}, 2, False),
        ("mvnone", {f"d{i}" for i in range(10)}, 8, True),  # none healthy: all count
    ]
    for owner, healthy_ids, count, random_pick in cases:
        allv, healthy = mv_values(srv, owner, healthy_ids)
        seen = set()
        for r in pl.ask(srv.port, name(owner), n=n, tcp=tcp):
            vals, ancount = pl.answer_values(r, name(owner))
            assert ancount <= 8, f"{owner}: {ancount} records: more than 8\n{r}"
            assert vals <= healthy, (f"{owner}: unhealthy values answered while a healthy one "
                                     f"exists: {sorted(vals - healthy)}\n{r}")
            assert ancount == len(vals) == count, (
                f"{owner}: want {count} distinct values, got {ancount} records, "
                f"{len(vals)} distinct\n{r}")
            seen |= vals
        if random_pick:
            assert seen == healthy, f"{owner}: never answered: {sorted(healthy - seen)}"


def test_latency_next_region(dead_down):
    srv = dead_down
    for _ in range(20):
        assert answer(srv, "lat") == "w", "the first region's set is unhealthy: the next region"


def test_ctl_health_lists_checks(dead_down, endpoints):
    srv = dead_down
    out = health_output(srv)
    live = check_line(out, "live")
    dead = check_line(out, "dead")
    assert line_state(live) == "healthy", live
    assert line_state(dead) == "unhealthy", dead
    assert str(endpoints["live"].port) in live, f"target port missing: {live}"
    assert str(endpoints["dead"]) in dead, f"target port missing: {dead}"
    for check in ("flip", "web503", "webbody", "anyof", "allof", "invdead", "invlive",
                  "disdead"):
        check_line(out, check)


# --------------------------------------------------------------------------------------------
# policy files at reload

RELOAD_ZONE = ("$ORIGIN rl.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 900 604800 60\n"
               "  IN NS ns1\nns1 IN A 192.0.2.53\n")
RELOAD_GOOD = "set r A weighted only weight=1\n    10.9.0.{k}\n"
RELOAD_BAD = {
    # case: (policy text, line of the error)
    "weight_300": ("set r A weighted only weight=300\n    10.9.0.7\n", 1),
    "unknown_check": ("set r A failover p role=primary check=nosuch\n    10.9.0.7\n", 1),
    "no_primary": ("set r A failover s role=secondary\n    10.9.0.7\n", 1),
    "continent": ("set r A geo x location=continent:XY\n    10.9.0.7\n", 1),
    "garbage": ("set r A weighted only weight=1\n    10.9.0.7\nthis is not a statement\n", 3),
}


@pytest.fixture
def rl_server(tmp_path):
    zdir = tmp_path / "zones"
    zdir.mkdir()
    (zdir / "rl.test.zone").write_text(RELOAD_ZONE)
    (zdir / "rl.test.policy").write_text(RELOAD_GOOD.format(k=1))
    ctl_path = tmp_path / "ctl.sock"
    gen = serve_managed(tmp_path, None, ["--zones", zdir, "--workers", "1", "--control",
                                         ctl_path], "reload", ready_name="rl.test.")
    srv = next(gen)
    srv.ctl_path = ctl_path
    srv.policy = zdir / "rl.test.policy"
    yield srv
    next(gen, None)


def rl_value(srv):
    r = pl.ask1(srv.port, "r.rl.test.")
    rrset = pl.find_rrset(r.answer, "r.rl.test.", "A")
    assert rrset is not None, f"no answer for r.rl.test.\n{r}"
    return pl.rrset_texts(rrset)


def test_reload_policy_file(rl_server):
    srv = rl_server
    assert rl_value(srv) == {"10.9.0.1"}
    sums = checksums(srv)
    for case, (text, line) in RELOAD_BAD.items():
        time.sleep(0.01)  # a distinct mtime for every edit
        srv.policy.write_text(text)
        p = ctl(srv, "reload")
        assert p.returncode == 1, f"{case}: reload of a bad policy file exited " \
                                  f"{p.returncode}\n{p.stdout}{p.stderr}"
        assert f"rl.test.policy:{line}" in p.stdout + p.stderr, (
            f"{case}: the refusal must name rl.test.policy:{line}\n{p.stdout}{p.stderr}")
        assert rl_value(srv) == {"10.9.0.1"}, f"{case}: the old image must keep serving"
        assert checksums(srv) == sums, f"{case}: the served image changed"
    srv.policy.write_text(RELOAD_GOOD.format(k=2))
    p = ctl(srv, "reload")
    assert p.returncode == 0, f"reload of a valid policy file: {p.returncode}\n" \
                              f"{p.stdout}{p.stderr}\n{srv.log_tail(2000)}"
    assert rl_value(srv) == {"10.9.0.2"}, "a valid edit of only the policy file must take effect"
    assert checksums(srv) != sums, "the image checksum must change with the policy"
