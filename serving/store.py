"""The prediction and feedback store: every routed post with its prediction and route, what the
human agent finally decided, and the crisis state shared by all workers.

SQLAlchemy with SQLite (the default, one file) or PostgreSQL: the two dialects with the
"insert or ignore" that crisis signals rely on. Timestamps are stored in UTC and come back
timezone-aware. The schema is versioned with Alembic (serving/migrate.py): opening a store
upgrades it.

Idempotency (docs/SECURITY.md): a post id is routed once. `routed_posts` holds one row per post id
(a unique index; rows that older releases stored twice are marked `duplicate_of`), with the hash
of the post's content, so a retry gets the stored result and a different post under a used id is
refused. Feedback is keyed by an idempotency key, the client's or one derived from its content.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from data.errors import UserError
from serving.migrate import upgrade

SUPPORTED_DIALECTS = ("sqlite", "postgresql")


class StoreError(UserError, RuntimeError):
    """The database URL is unusable or the database cannot be reached."""


class StoreUnavailable(RuntimeError):
    """A read or write failed for a reason of the database, not of the request (locked past the
    timeout, disk full, connection lost): the transaction was rolled back, nothing was stored."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


@contextmanager
def unavailable_as_error() -> Iterator[None]:
    """Turn the driver's operational errors into StoreUnavailable naming the database's own cause
    ("database is locked", "database or disk is full"), never the statement or its parameters."""
    try:
        yield
    except OperationalError as exc:
        cause = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise StoreUnavailable(cause[:200]) from exc


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, UTC stored, aware UTC datetimes out (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: store aware datetimes only")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class CrisisEpisode(Base):
    __tablename__ = "crisis_episodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intent: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    baseline_per_hour: Mapped[float]
    peak_window_count: Mapped[int]
    last_window_count: Mapped[int]
    last_evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # One active crisis per intent, even when two workers detect it at the same instant.
        Index("one_active_crisis_per_intent", "intent", unique=True,
              sqlite_where=ended_at.is_(None), postgresql_where=ended_at.is_(None)),
    )


@dataclass(frozen=True)
class Contact:
    """An earlier post of an author, for the contact history."""

    post_id: str
    received_at: datetime
    intent: str              # the agents' correction when feedback gave one, else the prediction
    resolved: bool | None    # what the latest feedback said; None without feedback


class RoutedPost(Base):
    __tablename__ = "routed_posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[str] = mapped_column(String(200), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(50))
    public: Mapped[bool] = mapped_column(Boolean)
    sector: Mapped[str | None] = mapped_column(String(100))
    customer_id: Mapped[str | None] = mapped_column(String(200))
    author_followers: Mapped[int | None]
    # Kept so that corrections can go back to annotators; None when the deployment opts out.
    text: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(String(200))
    taxonomy_version: Mapped[str] = mapped_column(String(50))
    routing_version: Mapped[str] = mapped_column(String(50))
    predictions: Mapped[dict] = mapped_column(JSON)
    intent: Mapped[str] = mapped_column(String(100))
    sentiment: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    queue: Mapped[str | None] = mapped_column(String(100))
    team: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(50))
    confidence_tier: Mapped[str] = mapped_column(String(20))
    needs_human: Mapped[bool] = mapped_column(Boolean)
    crisis_id: Mapped[int | None] = mapped_column(ForeignKey("crisis_episodes.id"))
    sla_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply_channel: Mapped[str] = mapped_column(String(20))
    out_of_hours: Mapped[bool] = mapped_column(Boolean)
    pii_kinds: Mapped[list] = mapped_column(JSON)
    reasons: Mapped[list] = mapped_column(JSON)
    auto_reply: Mapped[str | None] = mapped_column(Text)
    # sha256 of the validated post (serving.pipeline.content_hash); null on rows from before 0002.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # Set on the later rows of a post id that releases before 0002 stored more than once.
    duplicate_of: Mapped[int | None] = mapped_column(Integer)
    # Who wrote it, as a hash (serving.pipeline.author_key); null for a post naming no author and on
    # rows from before 0004, which then have no history.
    author_key: Mapped[str | None] = mapped_column(String(64))
    # The history /route returned with it (schemas.ContactHistory), so that a replay returns it too.
    contact_history: Mapped[dict | None] = mapped_column(JSON)
    suggested_reply: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("one_routing_per_post", "post_id", unique=True,
              sqlite_where=duplicate_of.is_(None), postgresql_where=duplicate_of.is_(None)),
        # The contact-history lookup of every new post: one author's posts in a time window.
        Index("routed_posts_by_author", "author_key", "received_at"),
    )


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[str] = mapped_column(String(200), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    corrected_labels: Mapped[dict | None] = mapped_column(JSON)
    handled_by_team: Mapped[str | None] = mapped_column(String(100))
    resolved: Mapped[bool] = mapped_column(Boolean)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agent_id: Mapped[str | None] = mapped_column(String(200))
    satisfaction: Mapped[int | None] = mapped_column(Integer)  # 1-5, when the platform asked
    # The client's Idempotency key, or "content:" + the content hash; null on rows from before 0002.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("one_feedback_per_idempotency_key", "idempotency_key", unique=True),)


class ModelReference(Base):
    """The drift reference of a model version (training.label_profile), recorded by whoever routes
    with it first, so that a report or a gauge reading the store needs no access to the model."""

    __tablename__ = "model_references"

    model_version: Mapped[str] = mapped_column(String(200), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reference: Mapped[dict] = mapped_column(JSON)


class NegativeSignal(Base):
    """A negative post on an intent, the input of crisis detection (one row per post and intent,
    so a retried request does not count twice)."""

    __tablename__ = "negative_signals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[str] = mapped_column(String(200))
    intent: Mapped[str] = mapped_column(String(100))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Hashes of who wrote the post and in which thread (serving.pipeline.author_key); a crisis counts
    # distinct authors. Null on rows from before 0002: each of those counts as its own author.
    author_key: Mapped[str | None] = mapped_column(String(64))
    conversation_key: Mapped[str | None] = mapped_column(String(64))
    # A hash of the API key that sent the post (serving.security.client_key); null without keys and
    # on rows from before 0003. A crisis can bound how many authors one key contributes.
    client_key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("post_id", "intent", name="one_signal_per_post_and_intent"),
        Index("signals_by_intent_and_time", "intent", "observed_at"),
    )


@dataclass(frozen=True)
class Signal:
    post_id: str
    intent: str
    observed_at: datetime
    author_key: str | None = None
    conversation_key: str | None = None
    client_key: str | None = None


@dataclass(frozen=True)
class WindowCount:
    """Negative signals on an intent in a time window."""

    posts: int
    authors: int        # what a crisis counts: one author weighs one, however many posts
    conversations: int


class PredictionStore:
    """Sessions on one database; tables are created on first use."""

    def __init__(self, url: str, lock_timeout_s: float = 30.0):
        self.url = url
        self.engine = _create_engine(url, lock_timeout_s)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.schema_revisions = upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises. A failure of
        the database itself (locked, full, gone) raises StoreUnavailable."""
        with unavailable_as_error(), self._sessions.begin() as session:
            yield session

    def ping(self) -> None:
        """Read one row, outside any transaction: on SQLite a session begins by taking the write
        lock (see _create_engine), and a readiness probe must not queue for it."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(f"SELECT 1 FROM {RoutedPost.__tablename__} LIMIT 1")
            cursor.fetchall()
            cursor.close()
        finally:
            connection.close()

    def close(self) -> None:
        self.engine.dispose()

    def add_routed_posts(self, rows: Sequence[RoutedPost]) -> None:
        with self.session() as session:
            session.add_all(rows)

    def has_post(self, post_id: str) -> bool:
        with self.session() as session:
            return session.scalar(select(RoutedPost.id).where(RoutedPost.post_id == post_id).limit(1)) is not None

    def add_feedback(self, row: Feedback) -> tuple[Feedback, bool]:
        """Store `row` unless the same feedback is stored already: returns (the stored row, whether it
        was there before). The same feedback is the row with the same idempotency key (whatever its
        content: the caller compares content hashes) or, without a key, the latest feedback of the
        same agent on the same post when its content is identical."""
        with self.session() as session:
            stored = self._same_feedback(session, row)
            if stored is not None:
                return stored, True
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                # The same key, stored by a concurrent request a moment ago (PostgreSQL).
                stored = self._same_feedback(session, row)
                if stored is None:
                    raise
                return stored, True
            return row, False

    @staticmethod
    def _same_feedback(session: Session, row: Feedback) -> Feedback | None:
        if row.idempotency_key is not None:
            return session.scalar(select(Feedback).where(Feedback.idempotency_key == row.idempotency_key))
        if row.content_hash is None:
            # No hash (a row from a caller that does not compute one): nothing to compare, never a replay.
            return None
        same_agent = Feedback.agent_id.is_(None) if row.agent_id is None else Feedback.agent_id == row.agent_id
        latest = session.scalar(
            select(Feedback).where(Feedback.post_id == row.post_id, same_agent).order_by(Feedback.id.desc()).limit(1)
        )
        return latest if latest is not None and latest.content_hash == row.content_hash else None

    @staticmethod
    def stored_routings(session: Session, post_ids: Sequence[str]) -> dict[str, RoutedPost]:
        """The stored routing of each of these post ids that has one (not counting duplicate rows)."""
        if not post_ids:
            return {}
        rows = session.scalars(select(RoutedPost).where(
            RoutedPost.post_id.in_(sorted(set(post_ids))), RoutedPost.duplicate_of.is_(None)))
        return {row.post_id: row for row in rows}

    @staticmethod
    def earlier_contacts(session: Session, author_key: str, since: datetime, until: datetime,
                         excluding_post_id: str) -> list[Contact]:
        """The author's posts routed with since < received_at <= until, oldest first, each with what
        the latest feedback on it said (the corrected intent, resolved or not)."""
        rows = session.execute(
            select(RoutedPost.post_id, RoutedPost.received_at, RoutedPost.intent)
            .where(RoutedPost.author_key == author_key, RoutedPost.received_at > since, RoutedPost.received_at <= until,
                   RoutedPost.post_id != excluding_post_id, RoutedPost.duplicate_of.is_(None))
            .order_by(RoutedPost.received_at, RoutedPost.id)
        ).all()
        if not rows:
            return []
        latest = (select(func.max(Feedback.id)).where(Feedback.post_id.in_([row.post_id for row in rows]))
                  .group_by(Feedback.post_id))
        feedback = {row.post_id: row for row in session.execute(
            select(Feedback.post_id, Feedback.corrected_labels, Feedback.resolved).where(Feedback.id.in_(latest)))}
        contacts = []
        for row in rows:
            said = feedback.get(row.post_id)
            corrected = (said.corrected_labels or {}).get("intent") if said is not None else None
            contacts.append(Contact(row.post_id, row.received_at, corrected if isinstance(corrected, str) else row.intent,
                                    said.resolved if said is not None else None))
        return contacts

    def feedback_for(self, post_id: str) -> list[Feedback]:
        with self.session() as session:
            return list(session.scalars(select(Feedback).where(Feedback.post_id == post_id).order_by(Feedback.id)))

    def routed_posts(self, post_id: str) -> list[RoutedPost]:
        with self.session() as session:
            return list(session.scalars(select(RoutedPost).where(RoutedPost.post_id == post_id).order_by(RoutedPost.id)))

    def corrections_after(self, after_id: int) -> tuple[list[tuple[Feedback, RoutedPost | None]], int]:
        """The agents' corrections after the feedback cursor `after_id`: each feedback row with
        corrected labels, in id order, with the latest routed row of its post (None if there is none),
        and the highest feedback id read, corrected or not (`after_id` when there is none)."""
        corrections, last_id = [], after_id
        with self.session() as session:
            rows = session.scalars(select(Feedback).where(Feedback.id > after_id).order_by(Feedback.id)).all()
            for row in rows:
                last_id = max(last_id, row.id)
                if not row.corrected_labels:
                    continue
                routed = session.scalars(
                    select(RoutedPost).where(RoutedPost.post_id == row.post_id).order_by(RoutedPost.id.desc()).limit(1)
                ).first()
                corrections.append((row, routed))
        return corrections, last_id

    def add_signals(self, session: Session, signals: Sequence[Signal]) -> None:
        """Insert signals, ignoring the ones already there (same post and intent)."""
        if not signals:
            return
        insert = _dialect_insert(self.engine)
        statement = insert(NegativeSignal).values([
            {"post_id": s.post_id, "intent": s.intent, "observed_at": s.observed_at,
             "author_key": s.author_key, "conversation_key": s.conversation_key, "client_key": s.client_key}
            for s in signals
        ]).on_conflict_do_nothing(index_elements=["post_id", "intent"])
        session.execute(statement)

    @staticmethod
    def count_signals(session: Session, intent: str, since: datetime, until: datetime,
                      max_authors_per_client: int | None = None) -> WindowCount:
        """Signals on `intent` with since < observed_at <= until: posts, distinct authors (a signal
        without an author key, from before migration 0002, counts as its own author) and distinct
        conversations. With `max_authors_per_client`, each API key's distinct authors count up to
        that many (signals without a client key, from before 0003 or a server without keys, count
        without a bound)."""
        author = func.coalesce(NegativeSignal.author_key, literal("post:") + NegativeSignal.post_id)
        in_window = (NegativeSignal.intent == intent, NegativeSignal.observed_at > since, NegativeSignal.observed_at <= until)
        posts, authors, conversations = session.execute(
            select(func.count(), func.count(func.distinct(author)), func.count(func.distinct(NegativeSignal.conversation_key)))
            .where(*in_window)
        ).one()
        if max_authors_per_client is not None and authors:
            # An author seen from two keys counts under each: the bound is on what one key can add.
            per_client = session.execute(
                select(NegativeSignal.client_key, func.count(func.distinct(author))).where(*in_window)
                .group_by(NegativeSignal.client_key)
            ).all()
            bounded = sum(count if client is None else min(count, max_authors_per_client) for client, count in per_client)
            authors = min(authors, bounded)
        return WindowCount(posts=posts or 0, authors=authors or 0, conversations=conversations or 0)

    def record_reference(self, model_version: str, reference: dict, now: datetime) -> None:
        """Keep a model version's drift reference; the first one recorded stays (a version's model
        does not change)."""
        insert = _dialect_insert(self.engine)
        with self.session() as session:
            session.execute(insert(ModelReference).values(model_version=model_version, recorded_at=now,
                                                          reference=reference)
                            .on_conflict_do_nothing(index_elements=["model_version"]))

    def reference_for(self, model_version: str) -> dict | None:
        with self.session() as session:
            return session.scalar(select(ModelReference.reference).where(ModelReference.model_version == model_version))

    def recent_predictions(self, since: datetime, until: datetime, limit: int) -> list[tuple[str, dict]]:
        """(model_version, predictions) of the latest `limit` posts routed with since < received_at <= until."""
        with self.session() as session:
            return [tuple(row) for row in session.execute(
                select(RoutedPost.model_version, RoutedPost.predictions)
                .where(RoutedPost.received_at > since, RoutedPost.received_at <= until, RoutedPost.duplicate_of.is_(None))
                .order_by(RoutedPost.received_at.desc()).limit(limit))]

    def human_triage_rate(self, since: datetime) -> tuple[int, float | None]:
        """(posts routed since `since`, share of them sent to human triage; None when there were none)."""
        with self.session() as session:
            total = session.scalar(select(func.count()).select_from(RoutedPost).where(RoutedPost.received_at > since)) or 0
            if total == 0:
                return 0, None
            triaged = session.scalar(
                select(func.count()).select_from(RoutedPost).where(
                    RoutedPost.received_at > since, RoutedPost.confidence_tier == "human_triage"
                )
            ) or 0
        return total, triaged / total


def _create_engine(url: str, lock_timeout_s: float = 30.0) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The URL is not echoed: it may carry a password.
        raise StoreError("the database URL cannot be parsed; expected e.g. sqlite:///var/smista.db "
                         "or postgresql://user@host/db") from None
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise StoreError(
            f"database {parsed.get_backend_name()!r} is not supported; use one of {', '.join(SUPPORTED_DIALECTS)}"
        )
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    in_memory = parsed.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every thread would see its own empty in-memory database.
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": lock_timeout_s})

    @event.listens_for(engine, "connect")
    def _sqlite_for_many_writers(connection: Any, _record: Any) -> None:
        # The driver's own implicit transactions break savepoints; they are begun below instead.
        connection.isolation_level = None
        if in_memory:
            return
        # Several worker processes write to one file: WAL lets readers run beside the writer, the
        # busy timeout makes a writer wait for the lock instead of failing, and synchronous=NORMAL
        # (safe with WAL against a crashed process) spares an fsync per commit.
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _take_the_write_lock_first(connection: Any) -> None:
        # A transaction that reads and then writes would fail with "database is locked" if another
        # process wrote in between; taking the write lock up front makes it wait its turn instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _dialect_insert(engine: Engine):
    """The INSERT with ON CONFLICT of the store's database (SQLite or PostgreSQL)."""
    return sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert

