"""The prediction/feedback store and the crisis state it shares between workers and restarts."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from serving.crisis import CrisisMonitor
from serving.routing_config import CrisisConfig
from serving.store import CrisisEpisode, Feedback, PredictionStore, RoutedPost, Signal, StoreError

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
# A small window so a handful of posts make a spike: 5 posts in 10 minutes is 30/h.
CRISIS = CrisisConfig(
    team="direzione", priority="urgente", negative_sentiments=["negativo"], excluded_intents=["fuori_tema"],
    window_minutes=10, baseline_hours=24, start_rate_per_hour=30, baseline_multiple=4,
    baseline_floor_per_hour=1.0, end_rate_per_hour=12,
)


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path / 'store' / 'smista.db'}"


@pytest.fixture
def store(database_url):
    store = PredictionStore(database_url)
    yield store
    store.close()


def routed_row(post_id: str, at: datetime, tier: str = "auto", crisis_id: int | None = None) -> RoutedPost:
    return RoutedPost(
        post_id=post_id, received_at=at, created_at=at - timedelta(minutes=3), channel="twitter", public=True,
        sector="telco", customer_id=None, author_followers=10, text="testo", model_version="m1", taxonomy_version="1",
        routing_version="1", predictions={"intent": {"labels": ["reclamo"]}}, intent="reclamo", sentiment="negativo",
        action="queue", queue="customer_care", team="customer_care", priority="alta", confidence_tier=tier,
        needs_human=tier != "auto", crisis_id=crisis_id, sla_deadline=at + timedelta(hours=2), reply_channel="public",
        out_of_hours=False, pii_kinds=[], reasons=[{"rule": "intent_owner"}],
    )


def observe(monitor: CrisisMonitor, store: PredictionStore, signals: list[Signal], at: datetime):
    with store.session() as session:
        return monitor.observe(session, signals, at)


def spike(monitor: CrisisMonitor, store: PredictionStore, intent: str, count: int, start: datetime,
          every: timedelta, prefix: str = "p"):
    views = {}
    for index in range(count):
        at = start + index * every
        views = observe(monitor, store, [Signal(f"{prefix}{index}", intent, at)], at)
    return views


def test_routed_posts_and_feedback_survive_a_restart(database_url):
    first = PredictionStore(database_url)
    first.add_routed_posts([routed_row("tw-1", T0)])
    first.add_feedback(Feedback(
        post_id="tw-1", recorded_at=T0 + timedelta(hours=1), corrected_labels={"intent": "fatturazione"},
        handled_by_team="customer_care", resolved=True,
        first_response_at=datetime.fromisoformat("2026-03-10T10:15:00+01:00"),
        resolved_at=datetime.fromisoformat("2026-03-10T11:00:00+01:00"), agent_id="agent-7",
    ))
    first.close()

    second = PredictionStore(database_url)
    assert second.has_post("tw-1") and not second.has_post("tw-2")
    [row] = second.routed_posts("tw-1")
    assert row.received_at == T0 and row.received_at.tzinfo == timezone.utc
    assert row.predictions == {"intent": {"labels": ["reclamo"]}} and row.reasons == [{"rule": "intent_owner"}]
    [feedback] = second.feedback_for("tw-1")
    assert feedback.corrected_labels == {"intent": "fatturazione"}
    assert feedback.first_response_at == datetime(2026, 3, 10, 9, 15, tzinfo=timezone.utc)
    second.close()


def test_naive_timestamps_are_refused(store):
    with pytest.raises(Exception, match="naive datetime"):
        store.add_routed_posts([routed_row("tw-1", T0.replace(tzinfo=None))])


def test_human_triage_rate_over_the_last_hour(store):
    assert store.human_triage_rate(since=T0) == (0, None)
    store.add_routed_posts([routed_row("a", T0 + timedelta(minutes=1), "auto"),
                            routed_row("b", T0 + timedelta(minutes=2), "human_triage"),
                            routed_row("c", T0 + timedelta(minutes=3), "suggest"),
                            routed_row("d", T0 - timedelta(hours=2), "human_triage")])
    total, rate = store.human_triage_rate(since=T0)
    assert total == 3 and rate == pytest.approx(1 / 3)


def test_a_spike_starts_a_crisis_and_a_quiet_window_ends_it(store):
    monitor = CrisisMonitor(store, CRISIS)
    views = spike(monitor, store, "assistenza_tecnica", 4, T0, timedelta(minutes=1))
    assert views == {}  # 4 in 10 minutes is 24/h: under 30/h
    views = spike(monitor, store, "assistenza_tecnica", 1, T0 + timedelta(minutes=4), timedelta(0), prefix="q")
    crisis = views["assistenza_tecnica"]
    assert crisis.status == "active" and crisis.window_count == 5 and crisis.window_rate_per_hour == 30.0
    assert crisis.baseline_per_hour == 1.0  # the floor: nothing before the window

    report = monitor.report(T0 + timedelta(minutes=8))
    assert [view.intent for view in report.active] == ["assistenza_tecnica"]
    # 12 minutes later only one post is left in the window (6/h < 12/h): the crisis ends.
    report = monitor.report(T0 + timedelta(minutes=13, seconds=30))
    assert report.active == []
    assert [(view.intent, view.status, view.peak_window_count) for view in report.recently_ended] == [
        ("assistenza_tecnica", "ended", 5)]
    # A day later it is no longer listed as recent.
    assert monitor.report(T0 + timedelta(days=2)).recently_ended == []


def test_one_author_weighs_one_however_many_posts(store):
    """The crisis flood: one client sends 60 negative posts with invented ids under one author."""
    monitor = CrisisMonitor(store, CRISIS)
    for index in range(60):
        at = T0 + timedelta(seconds=5 * index)
        views = observe(monitor, store, [Signal(f"flood-{index}", "assistenza_tecnica", at, author_key="a-flooder")], at)
        assert views == {}
    # Four more authors make five in the window: 30/h, a crisis (the flooder counts once).
    at = T0 + timedelta(minutes=5)
    signals = [Signal(f"real-{n}", "assistenza_tecnica", at, author_key=f"a-{n}", conversation_key="thread-1")
               for n in range(4)]
    views = observe(monitor, store, signals, at)
    crisis = views["assistenza_tecnica"]
    assert (crisis.window_count, crisis.window_posts, crisis.window_conversations) == (5, 64, 1)


def test_one_key_adds_at_most_its_share_of_authors(store):
    """A key holder who also invents authors: 40 made-up authors from one key, bounded to 3."""
    bounded = CRISIS.model_copy(update={"max_authors_per_client": 3})
    monitor = CrisisMonitor(store, bounded)
    for index in range(40):
        at = T0 + timedelta(seconds=5 * index)
        signal = Signal(f"invented-{index}", "assistenza_tecnica", at, author_key=f"a-made-up-{index}", client_key="key-a")
        assert observe(monitor, store, [signal], at) == {}
    with store.session() as session:
        window = (T0 - timedelta(minutes=1), T0 + timedelta(minutes=5))
        assert store.count_signals(session, "assistenza_tecnica", *window).authors == 40  # unbounded
        assert store.count_signals(session, "assistenza_tecnica", *window, max_authors_per_client=3).authors == 3
    # A second platform's key adds its own author: 3 + 1 = 4, still no crisis (5 needed, 30/h).
    at = T0 + timedelta(minutes=4)
    other = Signal("other-0", "assistenza_tecnica", at, author_key="a-other-0", client_key="key-b")
    assert observe(monitor, store, [other], at) == {}
    # A signal without a key (a server without keys, or stored before migration 0003) is not bounded: 5.
    at = T0 + timedelta(minutes=4, seconds=10)
    views = observe(monitor, store, [Signal("no-key-0", "assistenza_tecnica", at, author_key="a-no-key-0")], at)
    assert (views["assistenza_tecnica"].window_count, views["assistenza_tecnica"].window_posts) == (5, 42)


def test_the_crisis_survives_a_restart(database_url):
    first = PredictionStore(database_url)
    spike(CrisisMonitor(first, CRISIS), first, "fatturazione", 6, T0, timedelta(seconds=30))
    first.close()
    second = PredictionStore(database_url)
    report = CrisisMonitor(second, CRISIS).report(T0 + timedelta(minutes=4))
    assert [(view.intent, view.window_count) for view in report.active] == [("fatturazione", 6)]
    second.close()


def test_a_high_baseline_needs_a_bigger_spike(store):
    monitor = CrisisMonitor(store, CRISIS)
    # 240 negative posts spread over the day before the window: about 10/h of baseline, so a crisis
    # needs about 40/h, not 30/h.
    spike(monitor, store, "reclamo", 240, T0 - timedelta(hours=24, minutes=9), timedelta(minutes=6), prefix="base")
    assert spike(monitor, store, "reclamo", 6, T0, timedelta(seconds=30), prefix="now") == {}  # 36/h < 4 x 10/h
    assert "reclamo" in spike(monitor, store, "reclamo", 1, T0 + timedelta(minutes=3), timedelta(0), prefix="more")


def test_a_retried_post_counts_once(store):
    monitor = CrisisMonitor(store, CRISIS)
    for _ in range(6):
        views = observe(monitor, store, [Signal("same-post", "reclamo", T0)], T0)
    assert views == {}


def test_only_one_active_crisis_per_intent_even_when_written_twice(store):
    with pytest.raises(IntegrityError):
        with store.session() as session:
            for _ in range(2):
                session.add(CrisisEpisode(intent="reclamo", started_at=T0, ended_at=None, baseline_per_hour=1.0,
                                          peak_window_count=5, last_window_count=5, last_evaluated_at=T0))


def _worker(database_url: str, worker: int, barrier, results) -> None:
    store = PredictionStore(database_url)
    monitor = CrisisMonitor(store, CRISIS)
    barrier.wait()
    active = {}
    for index in range(10):
        at = T0 + timedelta(seconds=index)
        active = observe(monitor, store, [Signal(f"w{worker}-{index}", "assistenza_tecnica", at)], at) or active
    results.put(sorted(view.id for view in active.values()))
    store.close()


def test_workers_in_separate_processes_share_one_crisis(database_url):
    PredictionStore(database_url).close()  # create the tables once, as the first worker would
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(3), context.Queue()
    workers = [context.Process(target=_worker, args=(database_url, n, barrier, results)) for n in range(3)]
    for process in workers:
        process.start()
    seen = [results.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    store = PredictionStore(database_url)
    with store.session() as session:
        episodes = list(session.scalars(select(CrisisEpisode)))
        assert len(episodes) == 1
        counted = store.count_signals(session, "assistenza_tecnica", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
        assert (counted.posts, counted.authors) == (30, 30)  # no author keys: each post its own author
    assert all(ids == [episodes[0].id] for ids in seen)
    store.close()


def test_in_memory_database_is_shared_between_threads():
    import threading

    store = PredictionStore("sqlite://")
    thread = threading.Thread(target=store.add_routed_posts, args=([routed_row("t-1", T0)],))
    thread.start()
    thread.join()
    assert store.has_post("t-1")


def test_unusable_database_urls_are_named_without_the_password():
    with pytest.raises(StoreError, match="'mysql' is not supported; use one of sqlite, postgresql"):
        PredictionStore("mysql://user:hunter2@db/smista")
    with pytest.raises(StoreError) as error:
        PredictionStore("::hunter2::")
    assert "hunter2" not in str(error.value)


def test_a_crisis_opened_by_another_worker_a_moment_ago_is_joined(store, monkeypatch):
    with store.session() as session:
        theirs = CrisisEpisode(intent="reclamo", started_at=T0, ended_at=None, baseline_per_hour=1.0,
                               peak_window_count=5, last_window_count=5, last_evaluated_at=T0)
        session.add(theirs)
    # Our first look misses their episode, as a read just before their commit would (PostgreSQL).
    looks = []
    original = CrisisMonitor._active_episode

    def late_look(session, intent):
        looks.append(intent)
        return None if len(looks) == 1 else original(session, intent)

    monkeypatch.setattr(CrisisMonitor, "_active_episode", staticmethod(late_look))
    signals = [Signal(f"p{index}", "reclamo", T0) for index in range(5)]  # enough to start a crisis
    views = observe(CrisisMonitor(store, CRISIS), store, signals, T0)
    assert len(looks) == 2  # missed, tried to open one, was refused, looked again
    assert views["reclamo"].id == theirs.id
    with store.session() as session:
        assert len(list(session.scalars(select(CrisisEpisode)))) == 1
