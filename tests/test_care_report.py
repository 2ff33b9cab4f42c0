"""`smista report`: each metric on a small store whose answers are computed by hand, the three
renderings (HTML, JSON, CSV) of the same tables, and the command line."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from operations.kpis import ALL, compute_kpis, crisis_rows
from operations.report import build_report, write_csv, write_json
from operations.report_html import render_html
from operations.store_reader import read_crises, read_posts
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.rules import load_routing_rules
from serving.store import CrisisEpisode, Feedback, PredictionStore, RoutedPost
from smista.cli import main

UTC = timezone.utc
# Monday 2026-11-30, 09:00 in Rome (08:00 UTC): every team is open.
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SINCE, UNTIL = T0 - timedelta(hours=1), T0 + timedelta(days=1)
HEADS = ("intent", "customer_type", "business_action", "priority", "sentiment")


def routed(post_id: str, intent: str, *, minutes: int = 0, team: str | None = "customer_care", channel="twitter",
           priority="normale", tier="auto", action="queue", deadline_minutes: int | None = 60,
           sentiment="neutro", crisis_id: int | None = None) -> RoutedPost:
    received = T0 + timedelta(minutes=minutes)
    labels = {"intent": [intent], "customer_type": ["cliente_attivo"], "business_action": [],
              "priority": [priority], "sentiment": [sentiment]}
    return RoutedPost(
        post_id=post_id, received_at=received, created_at=received, channel=channel, public=True, sector=None,
        customer_id=None, author_followers=None, text=None, model_version="m/1", taxonomy_version="1",
        routing_version="1", predictions={head: {"labels": labels[head], "probabilities": {}, "confidence": 0.9}
                                          for head in HEADS},
        intent=intent, sentiment=sentiment, action=action, queue=team, team=team, priority=priority,
        confidence_tier=tier, needs_human=tier != "auto", crisis_id=crisis_id,
        sla_deadline=received + timedelta(minutes=deadline_minutes) if deadline_minutes is not None else None,
        reply_channel="public", out_of_hours=False, pii_kinds=[], reasons=[], auto_reply=None, content_hash=None,
        author_key=None, contact_history=None, suggested_reply=None)


def feedback(post_id: str, *, resolved: bool, first_minutes: int | None = None, resolved_minutes: int | None = None,
             satisfaction: int | None = None, corrected: dict | None = None, key: str = "") -> Feedback:
    at = lambda minutes: None if minutes is None else T0 + timedelta(minutes=minutes)  # noqa: E731
    return Feedback(post_id=post_id, recorded_at=T0 + timedelta(hours=3), corrected_labels=corrected,
                    handled_by_team=None, resolved=resolved, first_response_at=at(first_minutes),
                    resolved_at=at(resolved_minutes), agent_id="a1", satisfaction=satisfaction,
                    idempotency_key=f"{post_id}-{key or resolved}", content_hash=None)


@pytest.fixture
def rules(taxonomy):
    return load_routing_rules(DEFAULT_ROUTING_PATH, taxonomy)


@pytest.fixture
def store(tmp_path):
    """Eight posts; what each test expects is worked out from this table.

    p1 billing, twitter, normale:  answered in 30 min (deadline 60) and resolved in 2 h; satisfaction 5.
    p2 technical, twitter, alta:   answered in 90 min (deadline 60: breached); open; intent corrected to reclamo.
    p3 technical, facebook, alta:  no answer, deadline passed long before the end: breached.
    p4 praise, facebook, bassa:    answered in 10 min, resolved; satisfaction 4; sentiment corrected.
    p5 off-topic, logged only:     no deadline, no feedback.
    p6 information, logged only:   (not manageable) no deadline, no feedback.
    p7 purchase, email, normale, human_triage: answered in 20 min, then a second call resolves it at 3 h
                                   with satisfaction 2 (the first response stays).
    p8 technical, twitter, urgente, suggest, crisis 1: answered in 5 min (deadline 30), resolved at 10 h
                                   (customer_care's target for urgente is 4 h of service time: breached).
    """
    db = PredictionStore(f"sqlite:///{tmp_path / 'store.sqlite'}")
    with db.session() as session:
        session.add(CrisisEpisode(id=1, intent="assistenza_tecnica", started_at=T0 + timedelta(minutes=400),
                                  ended_at=T0 + timedelta(minutes=520), baseline_per_hour=1.0, peak_window_count=25,
                                  last_window_count=3, last_evaluated_at=T0 + timedelta(minutes=520)))
        # An episode long before the period: not in the report.
        session.add(CrisisEpisode(id=2, intent="fatturazione", started_at=T0 - timedelta(days=20),
                                  ended_at=T0 - timedelta(days=19), baseline_per_hour=1.0, peak_window_count=21,
                                  last_window_count=2, last_evaluated_at=T0 - timedelta(days=19)))
        session.flush()
        session.add_all([
            routed("p1", "fatturazione", minutes=0),
            routed("p2", "assistenza_tecnica", minutes=60, priority="alta", sentiment="negativo"),
            routed("p3", "assistenza_tecnica", minutes=120, priority="alta", channel="facebook", tier="suggest"),
            routed("p4", "elogio", minutes=180, priority="bassa", channel="facebook", team="social_media",
                   sentiment="positivo"),
            routed("p5", "fuori_tema", minutes=240, team=None, action="log_only", deadline_minutes=None, priority="bassa"),
            routed("p6", "informazioni", minutes=300, team=None, action="log_only", deadline_minutes=None,
                   priority="bassa", tier="human_triage"),
            routed("p7", "acquisto", minutes=360, channel="email", team="commerciale", tier="human_triage",
                   deadline_minutes=120),
            routed("p8", "assistenza_tecnica", minutes=420, priority="urgente", tier="suggest", deadline_minutes=30,
                   sentiment="negativo", crisis_id=1),
            # Outside the period: never counted.
            routed("old", "reclamo", minutes=-24 * 60),
        ])
        session.add_all([
            feedback("p1", resolved=True, first_minutes=30, resolved_minutes=120, satisfaction=5),
            feedback("p2", resolved=False, first_minutes=150, corrected={"intent": "reclamo"}),
            feedback("p4", resolved=True, first_minutes=190, resolved_minutes=200, satisfaction=4,
                     corrected={"sentiment": "positivo", "priority": "normale"}),
            feedback("p7", resolved=False, first_minutes=380, key="first"),
            feedback("p7", resolved=True, resolved_minutes=540, satisfaction=2, key="second"),
            feedback("p8", resolved=True, first_minutes=425, resolved_minutes=1020),
        ])
    yield db
    db.close()


def kpis_of(store, rules):
    return compute_kpis(read_posts(store, SINCE, UNTIL), rules, SINCE, UNTIL)


def test_volumes_count_the_confirmed_intent_by_team_channel_and_hour(store, rules):
    tables = kpis_of(store, rules).tables
    intents = {row["intent"]: row["posts"] for row in tables["volume_by_intent"]}
    # p2 was predicted technical and corrected to reclamo: it counts as reclamo.
    assert intents["assistenza_tecnica"] == 2 and intents["reclamo"] == 1 and intents["fatturazione"] == 1
    assert sum(intents.values()) == 8
    teams = {row["team"]: row["posts"] for row in tables["volume_by_team"]}
    assert teams == {"customer_care": 4, "social_media": 1, "commerciale": 1, "(solo registro)": 2,
                     "risorse_umane": 0, "relazioni_esterne": 0, "direzione": 0, "triage": 0}
    channels = {row["channel"]: row["posts"] for row in tables["volume_by_channel"] if row["posts"]}
    assert channels == {"twitter": 5, "facebook": 2, "email": 1}
    by_hour = {(row["weekday"], row["hour"]): row["posts"] for row in tables["volume_by_hour_of_week"] if row["posts"]}
    # 08:00 UTC is 09:00 in Rome: p1 at 09, p2 at 10, ... p8 at 16, all on Monday.
    assert by_hour == {("lun", 9 + n): 1 for n in range(8)}
    assert len(tables["volume_by_hour_of_week"]) == 7 * 24


def test_first_response_and_resolution_against_the_sla(store, rules):
    rows = {(row["priority"], row["channel"]): row for row in kpis_of(store, rules).tables["response_times"]}
    everything = rows[(ALL, ALL)]
    # Deadlines: p1 p2 p3 p4 p7 p8. Within: p1 (30<=60), p4 (10<=60), p7 (20<=120), p8 (5<=30).
    # Breached: p2 (90>60), p3 (no answer, deadline passed).
    assert (everything["first_response_within"], everything["first_response_breached"],
            everything["first_response_pending"]) == (4, 2, 0)
    assert everything["first_response_within_share"] == pytest.approx(4 / 6, abs=1e-4)
    # Minutes to first response: 30, 90, 10, 20, 5 -> median 20, p90 = 30 + 0.6 * 60 = 66.
    assert everything["first_response_median_minutes"] == 20
    assert everything["first_response_p90_minutes"] == pytest.approx(66)
    alta = rows[("alta", ALL)]
    assert (alta["posts"], alta["first_response_within"], alta["first_response_breached"]) == (2, 0, 2)
    assert rows[("alta", "facebook")]["first_response_breached"] == 1
    # Resolution: p1 in 2 h (normale target 72 h: within), p4 in 20 min (bassa: within), p7 in 3 h
    # (commerciale, normale: within), p8 in 10 h (urgente 4 h of service time: breached); p2, p3
    # are open, their deadline (24 h of service time, Tuesday evening) after the end of the period:
    # pending. p5, p6 have no team: no target.
    assert (everything["resolution_within"], everything["resolution_breached"], everything["resolution_pending"]) == (3, 1, 2)
    assert everything["resolution_median_hours"] == pytest.approx((2 + 3) / 2)
    assert rows[("urgente", ALL)]["resolution_breached"] == 1


def test_flush_closing_problems_and_satisfaction(store, rules):
    tables = kpis_of(store, rules).tables
    assert tables["flush"] == [{"posts": 8, "fuori_tema": 1, "not_manageable": 1, "flush_rate": 0.25}]
    closing = tables["closing"][0]
    # Feedback on p1 p2 p4 p7 p8; resolved: p1 p4 p7 p8 (p7's latest call says resolved).
    assert (closing["with_feedback"], closing["resolved"], closing["closing_rate"]) == (5, 4, 0.8)
    # Problem intents with feedback: p1 (fatturazione), p2 (reclamo, corrected), p8 (assistenza_tecnica).
    assert (closing["problems"], closing["problems_solved"]) == (3, 2)
    satisfaction = {row["team"]: row for row in tables["satisfaction"]}
    assert satisfaction[ALL]["answers"] == 3 and satisfaction[ALL]["mean"] == pytest.approx(11 / 3, abs=1e-3)
    assert (satisfaction[ALL]["score_5"], satisfaction[ALL]["score_4"], satisfaction[ALL]["score_2"]) == (1, 1, 1)
    assert satisfaction[ALL]["satisfied_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert satisfaction["commerciale"]["mean"] == 2


def test_automation_per_tier_and_the_agents_corrections_per_head(store, rules):
    tables = kpis_of(store, rules).tables
    tiers = {row["tier"]: row for row in tables["automation"]}
    assert {tier: row["posts"] for tier, row in tiers.items()} == {"auto": 4, "suggest": 2, "human_triage": 2}
    assert tiers["auto"]["share"] == 0.5
    # auto with feedback: p1 (nothing corrected), p2 (intent), p4 (priority; the sentiment "correction"
    # repeats the prediction, so it is no correction).
    assert (tiers["auto"]["with_feedback"], tiers["auto"]["corrected"]) == (3, 2)
    assert tiers["suggest"]["with_feedback"] == 1 and tiers["suggest"]["corrected"] == 0
    corrections = {(row["tier"], row["head"]): row for row in tables["corrections"]}
    assert corrections[(ALL, "intent")]["corrected"] == 1 and corrections[(ALL, "intent")]["with_feedback"] == 5
    assert corrections[(ALL, "intent")]["precision"] == pytest.approx(0.8)
    assert corrections[(ALL, "sentiment")]["corrected"] == 0
    assert corrections[(ALL, "priority")]["corrected"] == 1
    assert corrections[("auto", "intent")]["correction_rate"] == pytest.approx(1 / 3, abs=1e-4)


def test_crises_of_the_period_with_the_posts_they_took(store, rules):
    posts = read_posts(store, SINCE, UNTIL)
    rows = crisis_rows(read_crises(store, SINCE, UNTIL), posts)
    assert [(row["crisis_id"], row["intent"], row["posts_routed_to_crisis"]) for row in rows] == [(1, "assistenza_tecnica", 1)]


def test_the_feedback_calls_of_a_post_merge(store):
    post = {p.post_id: p for p in read_posts(store, SINCE, UNTIL)}["p7"]
    # The second call left first_response_at out: the first call's value stays.
    assert post.outcome.first_response_at == T0 + timedelta(minutes=380)
    assert post.outcome.resolved and post.outcome.satisfaction == 2


def test_html_json_and_csv_render_the_same_tables(store, rules, tmp_path):
    report = build_report(store, rules, SINCE, UNTIL, forecast=None)
    html = render_html(report, rules.config.drift)
    # Self-contained: charts inline, nothing fetched, no script.
    assert html.count("<svg") >= 5 and "<script" not in html
    # (The SVGs name XML namespaces by URL; nothing refers to a resource to load.)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", html) and "<link" not in html
    assert not re.search(r"url\((?!#)", html) and "@import" not in html  # url(#id): a clip path in the page
    assert "Flush rate" in html and "assistenza_tecnica" in html
    document = json.loads(write_json(report, tmp_path / "r.json").read_text(encoding="utf-8"))
    assert document["summary"]["posts"] == 8 and document["summary"]["flush_rate"] == 0.25
    assert document["tables"]["flush"] == report.kpis.tables["flush"]
    files = {path.stem: path for path in write_csv(report, tmp_path / "csv")}
    assert set(files) == set(document["tables"])
    with files["volume_by_channel"].open(encoding="utf-8") as handle:
        rows = {row["channel"]: int(row["posts"]) for row in csv.DictReader(handle)}
    assert rows["twitter"] == 5


def test_store_values_are_escaped_in_the_html(tmp_path, rules):
    db = PredictionStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    with db.session() as session:
        session.add(routed("x", "reclamo", channel="<script>alert(1)</script>"))
    report = build_report(db, rules, SINCE, UNTIL, forecast=None)
    html = render_html(report, rules.config.drift)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    db.close()


def test_the_report_command(store, tmp_path, capsys):
    output = tmp_path / "out" / "report.html"
    code = main(["report", "--database-url", store.url, "--since", SINCE.isoformat(), "--until", UNTIL.isoformat(),
                 "--output", str(output), "--json", str(tmp_path / "r.json"), "--csv-dir", str(tmp_path / "csv"),
                 "--no-forecast"])
    assert code == 0
    assert "Report of 8 posts" in capsys.readouterr().out
    assert output.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (tmp_path / "csv" / "response_times.csv").is_file()


def test_the_report_command_names_a_bad_period(store, tmp_path, capsys):
    code = main(["report", "--database-url", store.url, "--since", "2026-12-02", "--until", "2026-12-01",
                 "--output", str(tmp_path / "r.html")])
    assert code == 2
    assert "--since" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--database-url", store.url, "--since", "yesterday"])
    assert "is not a date" in capsys.readouterr().err
