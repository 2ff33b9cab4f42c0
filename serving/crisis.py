"""Social crisis detection: a sliding window over the negative posts routed by every worker.

The state lives in the database (`negative_signals`, `crisis_episodes`), so all workers see one
crisis and it survives restarts. A crisis on an intent starts when, within the window, negative
posts on it reach `start_rate_per_hour` and `baseline_multiple` times their baseline rate; it ends
when the window rate falls below `end_rate_per_hour` (lower than the start rate, so it does not
flap). Evaluation happens when a negative post arrives on the intent and whenever the crisis view
is read, so a crisis also ends when its posts simply stop coming.

Rates count distinct authors, not posts: one author weighs one however many posts they send, so a
client that floods the endpoint with invented post ids under one author (or with no author at
all: anonymous posts count as one author per channel) cannot declare a crisis. The author is the
customer id, else the channel and handle (serving.pipeline.author_key). A key holder who also
invents authors is bounded by `max_authors_per_client`: one API key adds at most that many authors
to a window (serving.security.client_key identifies the key without storing it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.routing_config import CrisisConfig
from serving.schemas import CrisisReport, CrisisView
from serving.store import CrisisEpisode, PredictionStore, RoutedPost, Signal, WindowCount

RECENTLY_ENDED = timedelta(hours=24)


class CrisisMonitor:
    def __init__(self, store: PredictionStore, config: CrisisConfig):
        self._store = store
        self._config = config
        self._window_hours = config.window_minutes / 60

    def observe(self, session: Session, signals: Sequence[Signal], now: datetime) -> dict[str, CrisisView]:
        """Record negative posts, re-evaluate their intents, return the active crises among them.

        Runs in the caller's transaction, so the posts that trigger a crisis are stored with it.
        """
        self._store.add_signals(session, signals)
        active: dict[str, CrisisView] = {}
        for intent in sorted({signal.intent for signal in signals}):
            view = self.evaluate(session, intent, now)
            if view is not None and view.status == "active":
                active[intent] = view
        return active

    def report(self, now: datetime) -> CrisisReport:
        """Every active crisis, re-evaluated at `now`, and the ones that ended in the last day."""
        with self._store.session() as session:
            intents = list(session.scalars(select(CrisisEpisode.intent).where(CrisisEpisode.ended_at.is_(None))))
            for intent in intents:
                self.evaluate(session, intent, now)
            episodes = list(session.scalars(
                select(CrisisEpisode)
                .where((CrisisEpisode.ended_at.is_(None)) | (CrisisEpisode.ended_at > now - RECENTLY_ENDED))
                .order_by(CrisisEpisode.started_at)
            ))
            views = [self._view(session, episode, self._window(session, episode.intent, now)) for episode in episodes]
        return CrisisReport(
            evaluated_at=now,
            window_minutes=self._config.window_minutes,
            active=[view for view in views if view.status == "active"],
            recently_ended=[view for view in views if view.status == "ended"],
        )

    def evaluate(self, session: Session, intent: str, now: datetime) -> CrisisView | None:
        """Start, update or end the crisis on `intent`; return its view (None: no crisis, none started)."""
        config = self._config
        window_start = now - config.window
        counts = self._window(session, intent, now)
        window_count = counts.authors
        baseline_count = self._store.count_signals(session, intent, window_start - config.baseline, window_start,
                                                   config.max_authors_per_client).authors
        baseline_rate = max(baseline_count / config.baseline_hours, config.baseline_floor_per_hour)
        window_rate = window_count / self._window_hours

        episode = self._active_episode(session, intent)
        if episode is None:
            if window_rate < config.start_rate_per_hour or window_rate < config.baseline_multiple * baseline_rate:
                return None
            episode = CrisisEpisode(
                intent=intent, started_at=now, ended_at=None, baseline_per_hour=baseline_rate,
                peak_window_count=window_count, last_window_count=window_count, last_evaluated_at=now,
            )
            try:
                with session.begin_nested():
                    session.add(episode)
            except IntegrityError:
                # Another worker opened the same crisis a moment ago (possible on PostgreSQL; SQLite
                # writers take turns): join theirs.
                episode = self._active_episode(session, intent)
                if episode is None:
                    raise
            else:
                return self._view(session, episode, counts)
        episode.last_window_count = window_count
        episode.peak_window_count = max(episode.peak_window_count, window_count)
        episode.last_evaluated_at = now
        if window_rate < config.end_rate_per_hour:
            episode.ended_at = now
        session.flush()
        return self._view(session, episode, counts)

    @staticmethod
    def _active_episode(session: Session, intent: str) -> CrisisEpisode | None:
        return session.scalar(
            select(CrisisEpisode).where(CrisisEpisode.intent == intent, CrisisEpisode.ended_at.is_(None))
        )

    def _window(self, session: Session, intent: str, now: datetime) -> WindowCount:
        return self._store.count_signals(session, intent, now - self._config.window, now,
                                         self._config.max_authors_per_client)

    def _view(self, session: Session, episode: CrisisEpisode, counts: WindowCount) -> CrisisView:
        flagged = session.scalar(
            select(func.count()).select_from(RoutedPost).where(RoutedPost.crisis_id == episode.id)
        ) or 0
        return CrisisView(
            id=episode.id,
            intent=episode.intent,
            status="active" if episode.ended_at is None else "ended",
            started_at=episode.started_at,
            ended_at=episode.ended_at,
            window_count=counts.authors,
            window_posts=counts.posts,
            window_conversations=counts.conversations,
            window_rate_per_hour=round(counts.authors / self._window_hours, 2),
            baseline_per_hour=round(episode.baseline_per_hour, 3),
            peak_window_count=episode.peak_window_count,
            flagged_posts=flagged,
        )
