"""Smoke tests of the benchmark harness: registry, report formatting, wire parsing.

No server is started and nothing is timed: these pin down the harness's own logic only.
"""

from __future__ import annotations

import json
import math
import os
import pwd
import shutil
import socket
import subprocess
import sys
from typing import Any

import bench.cli as cli
import bench.corpus as corpus
import bench.report as report
import bench.servers as servers
import bench.wire as wire
import pytest
from bench.pillarbox_server import PillarboxServer
from bench.reference import DOVECOT_CONF, POSTFIX_MAIN_CF, POSTFIX_MASTER_CF
from bench.servers import OWNER_FILE, Endpoint, make_run_dir, reap_stale
from bench.workloads import WORKLOADS, Context

ENDPOINT = Endpoint(side="test", smtp_port=1, imap_port=2, pop3_port=3)


def test_registry_names_match_and_metrics_are_declared() -> None:
    """Every registered workload is keyed by its own name and declares unique metrics."""
    assert list(WORKLOADS) == [
        "smtp_ingest",
        "large_mailbox",
        "imap_mixed",
        "login_heavy",
        "pop3",
        "idle_fanout",
        "idle_fanout_scale",
    ]
    for name, cls in WORKLOADS.items():
        assert cls.name == name
        assert cls.description
        metrics = [m.name for m in cls.metrics()]
        assert metrics and len(metrics) == len(set(metrics))


@pytest.mark.parametrize("quick", [False, True])
def test_workloads_build_without_connecting(quick: bool) -> None:
    """Constructing a workload and asking its params touches no server; quick is smaller."""
    for cls in WORKLOADS.values():
        ctx = Context(endpoint=ENDPOINT, quick=quick, log=lambda _: None)
        params = cls(ctx).params()
        json.dumps(params)  # recorded in the JSON document as is
    full = WORKLOADS["smtp_ingest"](Context(ENDPOINT, False, lambda _: None)).params()
    small = WORKLOADS["smtp_ingest"](Context(ENDPOINT, True, lambda _: None)).params()
    assert full["messages"] == 5000 and full["senders"] == 20
    assert isinstance(small["messages"], int) and small["messages"] < 5000


def _document() -> dict[str, Any]:
    def fig(values: list[float], unit: str, higher: bool) -> dict[str, Any]:
        return {**report.summarise(values), "unit": unit, "higher_is_better": higher}

    return {
        "runs": 3,
        "quick": True,
        "workloads": [
            {
                "name": "w",
                "metrics": [
                    {"name": "rate", "unit": "msg/s", "higher_is_better": True},
                    {"name": "latency", "unit": "ms", "higher_is_better": False},
                ],
            }
        ],
        "sides": {
            "pillarbox": {
                "error": None,
                "workloads": {
                    "w": {
                        "metrics": {
                            "rate": fig([200, 100, 300], "msg/s", True),
                            "latency": fig([5, 4, 6], "ms", False),
                        },
                        "error": None,
                    }
                },
            },
            "reference": {
                "error": None,
                "workloads": {
                    "w": {
                        "metrics": {
                            "rate": fig([100, 100, 100], "msg/s", True),
                            "latency": fig([10, 10, 10], "ms", False),
                        },
                        "error": "run 3/3 failed: boom",
                    }
                },
            },
        },
    }


def test_summary_is_median_min_max() -> None:
    """A figure is the median of the runs with min and max; NaN runs are left out."""
    s = report.summarise([3.0, 1.0, math.nan, 2.0])
    assert (s["median"], s["min"], s["max"], s["runs"]) == (2.0, 1.0, 3.0, 3)
    assert report.summarise([])["median"] is None


def test_ratios_and_table() -> None:
    """Ratios are Pillarbox/reference medians; the table says which way is better."""
    doc = _document()
    doc["ratios"] = report.compute_ratios(doc)
    assert doc["ratios"] == {"w": {"rate": 2.0, "latency": 0.5}}
    table = report.format_table(doc)
    lines = table.splitlines()
    assert lines[0].split() == ["workload", "metric", "unit", "pillarbox", "reference", "P/R"]
    rate = next(line for line in lines if " rate " in line)
    assert "200 [100–300]" in rate and "2.00" in rate and "P 2.00x better" in rate
    latency = next(line for line in lines if " latency " in line)
    assert "0.50" in latency and "P 2.00x better" in latency
    assert "QUICK mode" in table
    assert "ERROR w on reference: run 3/3 failed: boom" in table


def test_a_workload_not_run_on_a_side_says_so_in_the_table() -> None:
    """A Pillarbox-only workload: the reference column reads "not run", no ratio, and a
    note says why; the JSON keeps the usual keys plus ``skipped``."""
    doc = _document()
    doc["sides"]["reference"]["workloads"]["w"] = {
        "params": {},
        "setup": {},
        "metrics": {},
        "error": None,
        "skipped": "Pillarbox only: because",
    }
    doc["ratios"] = report.compute_ratios(doc)
    assert doc["ratios"] == {"w": {}}
    table = report.format_table(doc)
    rate = next(line for line in table.splitlines() if " rate " in line)
    assert "200 [100–300]" in rate and "not run" in rate and "better" not in rate
    assert "w not run on reference: Pillarbox only: because" in table


def test_measure_side_skips_a_workload_meant_for_the_other_side() -> None:
    """idle_fanout_scale on the reference side: recorded as skipped, no server contact."""
    scale = WORKLOADS["idle_fanout_scale"]
    assert cli.runs_on(scale, "pillarbox") and not cli.runs_on(scale, "reference")

    class Server(cli.ServerProcess):
        side = "reference"
        stopped = False

        def stop(self) -> None:
            Server.stopped = True

    side = cli.Side(Server(), result={"error": None, "server": {}, "workloads": {}})
    ctx = Context(ENDPOINT, False, lambda _: None)
    cli.measure_side(side, [scale], 3, {scale.name: ctx}, {}, lambda _: None)
    result = side.result["workloads"]["idle_fanout_scale"]
    assert result["skipped"].startswith("Pillarbox only") and result["metrics"] == {}
    assert Server.stopped


def test_free_port_is_outside_the_ephemeral_range_and_never_repeats() -> None:
    """Ports for Dovecot/Postfix come from where no connect() or bind(0) takes one."""
    low, high = servers._ephemeral_range()
    ports = [servers.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(not low <= port <= high and 10000 <= port < 65536 for port in ports)
    for port in ports[:5]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))  # still free


def test_verdict_wording() -> None:
    assert report.verdict(None, True) == ""
    assert report.verdict(1.02, True) == "on par"
    assert report.verdict(0.5, True) == "P 2.00x worse"
    assert report.verdict(3.0, False) == "P 3.00x worse"


def test_table_without_reference() -> None:
    """With only the Pillarbox side the table still prints, ratios shown as '-'."""
    doc = _document()
    del doc["sides"]["reference"]
    doc["ratios"] = report.compute_ratios(doc)
    assert doc["ratios"] == {}
    assert " - " in report.format_table(doc)


def test_uid_set_and_search_parsing() -> None:
    assert wire.uid_set([5, 1, 2, 3, 9, 11, 12]) == "1:3,5,9,11:12"
    reply = wire.ImapReply("OK", b"done", [b"* SEARCH 4 8 15\r\n"])
    assert wire.parse_search(reply) == [4, 8, 15]
    fetch = wire.ImapReply(
        "OK", b"", [b"* 1 FETCH (UID 7 FLAGS (\\Seen))\r\n", b"* 2 FETCH (FLAGS () UID 9)\r\n"]
    )
    assert wire.parse_uid_flags(fetch) == [(7, b"\\Seen"), (9, b"")]


def _stream_pair() -> tuple[wire._Stream, socket.socket]:
    ours, theirs = socket.socketpair()
    stream = wire._Stream.__new__(wire._Stream)
    stream.sock = ours
    stream.buf = bytearray()
    stream.pos = 0
    return stream, theirs


def test_stream_reads_lines_literals_and_dot_terminated_data() -> None:
    """The lean reader finds line ends and the POP3 terminator across small reads."""
    stream, peer = _stream_pair()
    try:
        peer.sendall(
            b"* 1 FETCH (BODY[] {5}\r\nab\r\nc)\r\n+OK x\r\nline\r\n..dot\r\n.\r\nnext\r\n"
        )
        assert stream.line() == b"* 1 FETCH (BODY[] {5}\r\n"
        assert stream.exact(5) == b"ab\r\nc"
        assert stream.line() == b")\r\n"
        assert stream.line() == b"+OK x\r\n"
        assert stream.until(b"\r\n.\r\n") == len(b"line\r\n..dot\r\n.\r\n")
        assert stream.line() == b"next\r\n"
    finally:
        stream.close()
        peer.close()


def test_corpus_is_deterministic_and_sized() -> None:
    """Same index and seed give the same bytes; sizes land near the request; tokens present."""
    a = corpus.make_message(42, "u001@example.test", 20_000, seed=3)
    assert a == corpus.make_message(42, "u001@example.test", 20_000, seed=3)
    assert abs(len(a) - 20_000) < 2_000
    assert corpus.body_token(42).encode() in a
    assert corpus.subject_token(42).encode() in a
    assert b"\r\n" in a and b"\n" not in a.replace(b"\r\n", b"")


def test_reference_config_templates_format() -> None:
    """The Dovecot and Postfix templates take exactly the fields the module supplies."""
    fields = dict(
        root="/tmp/x",
        host="127.0.0.1",
        domain="example.test",
        uid=65534,
        gid=65534,
        tag="t",
        smtp_port=1,
        imap_port=2,
        pop3_port=3,
        lmtp_port=4,
        connection_limit=2500,
        client_limit=6000,
    )
    assert "port = 2" in DOVECOT_CONF.format(**fields)
    assert "mail_max_userip_connections = 2500" in DOVECOT_CONF.format(**fields)
    assert "lmtp:inet:127.0.0.1:4" in POSTFIX_MAIN_CF.format(**fields)
    assert POSTFIX_MASTER_CF.format(**fields).startswith("# Written")


def test_side_that_cannot_start_records_an_error() -> None:
    """A missing pillarbox command gives an error per workload, not an exception."""
    server = PillarboxServer(lambda _: None, command="/nonexistent/pillarbox")
    side = cli.start_side(server, list(WORKLOADS.values()), lambda _: None)
    assert side.endpoint is None
    assert "server did not start" in side.result["error"]
    assert set(side.result["workloads"]) == set(WORKLOADS)
    assert all(w["error"] for w in side.result["workloads"].values())


def test_arguments() -> None:
    args = cli.parse_args(["--quick", "--workloads", "pop3,smtp_ingest", "--runs", "2"])
    assert args.workload_names == ["pop3", "smtp_ingest"]
    assert cli.parse_args(["--idle-connections", "10000"]).idle_connections == 10000
    assert cli.parse_args(["--idle-scale-connections", "500"]).idle_scale_connections == 500
    with pytest.raises(SystemExit):
        cli.parse_args(["--idle-scale-connections", "0"])
    with pytest.raises(SystemExit):
        cli.parse_args(["--workloads", "nope"])
    with pytest.raises(SystemExit):
        cli.parse_args(["--idle-connections", "0"])


def test_reap_stale_only_touches_directories_of_dead_owners() -> None:
    """A run dir whose bench process is gone is removed; one whose owner lives is kept."""
    prefix = f"pbtest-reap-{os.getpid()}-"
    alive = make_run_dir(prefix)
    dead = make_run_dir(prefix)
    # A pid that has exited: the child above is reaped, so its pid is (almost surely) free.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    (dead / OWNER_FILE).write_text(f"{child.pid}\n")
    try:
        reap_stale(prefix, {"none.pid": "nothing"}, lambda _: None)
        assert alive.exists()
        assert not dead.exists()
    finally:
        shutil.rmtree(alive, ignore_errors=True)
        shutil.rmtree(dead, ignore_errors=True)


def test_imap_client_handles_literals_and_updates_before_continuation() -> None:
    """Untagged lines before '+' are kept; response literals are inlined; NO raises."""
    client = wire.ImapClient.__new__(wire.ImapClient)
    stream, peer = _stream_pair()
    client._io = stream
    client._tag = 0
    try:
        peer.sendall(
            b"* 3 EXISTS\r\n+ go\r\nb1 OK [APPENDUID 1 9] done\r\n"
            b"* 1 FETCH (UID 9 BODY[] {4}\r\nab\r\n)\r\nb2 OK fetched\r\n"
            b"b3 NO [TRYCREATE] no such mailbox\r\n"
        )
        reply = client.command("APPEND INBOX", literal=b"hi")
        assert reply.status == "OK" and reply.untagged == [b"* 3 EXISTS\r\n"]
        assert peer.recv(100).startswith(b"b1 APPEND INBOX {2}\r\n")
        reply = client.command("UID FETCH 9 BODY[]")
        assert reply.untagged == [b"* 1 FETCH (UID 9 BODY[] {4}\r\nab\r\n)\r\n"]
        with pytest.raises(wire.ProtocolFailure, match="IMAP SELECT: NO"):
            client.command("SELECT Nope")
    finally:
        stream.close()
        peer.close()


def test_pillarbox_config_is_valid_toml_with_the_documented_keys() -> None:
    """The generated config has [server], every [listen] key, and lifts per-IP caps."""
    import tomllib

    from bench.pillarbox_server import CONFIG

    text = CONFIG.format(
        data_dir="/d", host="127.0.0.1", smtp_port=1, imap_port=2, pop3_port=3, max_connections=9
    )
    config = tomllib.loads(text)
    assert config["server"] == {"hostname": "pillarbox.bench.invalid", "data_dir": "/d"}
    assert set(config["listen"]) == {
        "smtp",
        "submission",
        "submissions",
        "imap",
        "imaps",
        "pop3",
        "pop3s",
        "http",
    }
    assert config["listen"]["imap"] == "127.0.0.1:2" and config["listen"]["http"] == ""
    assert config["limits"]["connection_rate_per_ip"] == 0
    assert config["limits"]["max_connections"] == config["limits"]["max_connections_per_ip"] == 9


@pytest.mark.skipif(os.geteuid() != 0, reason="the files are given to the mail user")
def test_maildir_bulk_store_writes_what_dovecot_lmtp_would(tmp_path: Any) -> None:
    """--build fast on the reference side: LF files in Maildir/cur with the LMTP headers,
    S= (stored) and W= (CRLF) sizes in the name, names ordered by message number."""
    from bench.reference import ReferenceServers

    server = ReferenceServers(lambda _: None)
    server._root = tmp_path
    cur = tmp_path / "mail" / "big@example.test" / "Maildir" / "cur"
    cur.mkdir(parents=True)
    message = b"Subject: hi\r\n\r\nbody\r\n"
    server.write_maildir("big@example.test", [("a@x.test", message)] * 3, 7)
    names = sorted(p.name for p in cur.iterdir())
    assert len(names) == 3
    first = cur / names[0]
    data = first.read_bytes()
    assert b"\r" not in data and data.endswith(b"Subject: hi\n\nbody\n")
    assert data.startswith(b"Return-Path: <a@x.test>\nDelivered-To: big@example.test\n")
    lines = data.count(b"\n")
    assert f",S={len(data)},W={len(data) + lines}:2," in names[0]
    numbers = [int(name.split(".")[1][1:].split("P")[0]) for name in names]
    assert numbers == [7, 8, 9]
    assert first.stat().st_uid == pwd.getpwnam("nobody").pw_uid
