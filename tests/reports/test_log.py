"""``broadcaster log`` over the log in conftest.py (24 deliveries: 12 loudspeaker, 12 SMS)."""

from __future__ import annotations

import csv
import io
import json

from tests.reports.conftest import phone


def log(run, *args) -> list[dict]:
    return json.loads(run("log", "--json", *args).output)


def test_all_rows_newest_first_with_masked_numbers(run, dataset):
    rows = log(run)
    assert len(rows) == 24
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    sms = [r for r in rows if r["channel"] == "sms"]
    assert len(sms) == 12 and all(r["recipient"] and phone(1) != r["recipient"] for r in sms)
    assert not any(phone(n) in json.dumps(rows) for n in range(1, 10))
    shown = log(run, "--show-numbers", "--channel", "sms")
    assert {r["recipient"] for r in shown} == {phone(n) for n in range(1, 10)}
    table = run("log").output
    assert "Nhật ký" in table and phone(1) not in table


def test_filters(run, dataset):
    assert len(log(run, "--channel", "sms", "--status", "delivered")) == 4
    assert len(log(run, "--status", "failed", "--status", "missed")) == 3
    assert {r["topic"] for r in log(run, "--topic", "CDS")} == {"CDS"}
    assert len(log(run, "--topic", "CDS")) == 10
    assert len(log(run, "--station", "XA-02")) == 3
    assert len(log(run, "--plan", "911/KH-UBND")) == 23  # announcement A1 carries no plan
    assert len(log(run, "--item", str(dataset["item"]))) == 8
    assert len(log(run, "--limit", "3")) == 3
    # Local dates: 1 April holds only the 03:00 slot, written 2023-03-31 20:00 UTC.
    april_first = log(run, "--since", "2023-04-01", "--until", "2023-04-01")
    assert len(april_first) == 1 and april_first[0]["duration_s"] == 240
    assert april_first[0]["created_at"] == "2023-04-01T03:00:00+07:00"  # station time, with its offset
    assert april_first[0]["created_at_utc"].startswith("2023-03-31T20:00:00+00:00")
    assert len(log(run, "--since", "2023-04-10 06:00", "--until", "2023-04-11 06:00")) == 3
    assert len(log(run, "--since", "2023-08-01")) == 2


def test_csv_and_errors(run, dataset):
    rows = list(csv.DictReader(io.StringIO(run("log", "--csv", "--channel", "loudspeaker").output)))
    assert len(rows) == 12 and rows[0]["channel"] == "loudspeaker"
    assert {r["status"] for r in rows} == {"played", "missed", "interrupted", "failed", "playing"}
    assert "không mở được tệp" in {r["error"] for r in rows}
    assert "unknown station" in run("log", "--station", "NOPE", ok=False).output
    assert "bad date" in run("log", "--since", "31/02/2023", ok=False).output
    assert "no content item" in run("log", "--item", "999", ok=False).output
