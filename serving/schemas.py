"""The shapes that cross the HTTP boundary: requests, predictions, routes, feedback, crises.

Type hints here are the API schema (OpenAPI is generated from them). Request models check types
only; what needs the taxonomy (channels, label ids, text length) is checked by
`data.schema.PostValidator` and the feedback validator, so the rules live in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from data.schema import check_utc_time

ConfidenceTier = Literal["auto", "suggest", "human_triage"]


class _Request(BaseModel):
    # strict: "12" is not a follower count and "yes" is not a boolean; a care platform that sends
    # them has a bug worth hearing about.
    model_config = ConfigDict(extra="forbid", strict=True)


class AuthorIn(_Request):
    handle: str | None = Field(default=None, description="Public handle, e.g. @luca_b87.")
    followers: int | None = Field(default=None, description="Follower count when the channel has one.")


class PostIn(_Request):
    """A post as a care platform sends it: only `text` is required (and `channel` to route it)."""

    # Every string is bounded here, before any path (with or without a channel) stores or echoes it.
    id: str | None = Field(
        default=None, max_length=200, description="Your id for the post; the service assigns one when missing."
    )
    text: str = Field(description="What the person wrote.")
    channel: str | None = Field(
        default=None, description="Channel id from the taxonomy (twitter, facebook, email, ...); required by /route."
    )
    author: AuthorIn | None = Field(default=None)
    public: bool | None = Field(default=None, description="Public post or private message; default: the channel's.")
    created_at: str | None = Field(default=None, description="ISO 8601 with offset, e.g. 2026-03-14T21:47:00+01:00.")
    conversation_id: str | None = Field(default=None, max_length=200)
    customer_id: str | None = Field(default=None, max_length=200, description="CRM id when the author is a known customer.")
    language: str | None = Field(default=None, max_length=2, description="ISO 639-1 code; default it.")
    sector: str | None = Field(default=None, max_length=100, description="Business sector of the addressed brand.")


class HeadOutput(BaseModel):
    labels: list[str] = Field(description="Single-label head: exactly one id; multi-label: the ids over threshold.")
    probabilities: dict[str, float] = Field(description="Every label id of the head -> probability.")
    confidence: float = Field(description="Single-label: top probability; multi-label: the least certain decision.")


class TextPrediction(BaseModel):
    """What the Classifier service returns per text (internal: the Router wraps it)."""

    predictions: dict[str, HeadOutput]
    model_version: str
    taxonomy_version: str
    runtime: str = "torch"


class ModelInfo(BaseModel):
    model_version: str
    taxonomy_version: str
    heads: list[str]


class PostClassification(BaseModel):
    id: str
    predictions: dict[str, HeadOutput] = Field(description="Head (taxonomy field) -> prediction.")


class ClassifyResponse(BaseModel):
    model_version: str
    taxonomy_version: str
    results: list[PostClassification] = Field(description="One per post, in request order.")
    runtime: str = Field(
        default="torch",
        description="What ran the model: torch, onnx (fp32) or onnx-int8 (SMISTA_RUNTIME); sklearn for the TF-IDF baseline.",
    )


class Reason(BaseModel):
    """One rule that fired, and the predictions behind it."""

    rule: str = Field(description="Rule id, e.g. intent_owner, business_rule:prospect_to_sales, crisis.")
    effect: str = Field(description="What the rule did, in words.")
    labels: dict[str, str | list[str]] = Field(default_factory=dict, description="Predicted labels the rule read.")
    confidences: dict[str, float] = Field(
        default_factory=dict,
        description="Head -> confidence; for a multi-label head 'head:label' -> that label's probability.",
    )


class RouteDecision(BaseModel):
    action: Literal["queue", "log_only"] = Field(description="log_only: stored and counted, not queued (fuori_tema).")
    queue: str | None = Field(description="Team queue that receives the post; the triage queue when unsure.")
    team: str | None = Field(description="Team the rules chose; for human triage, the suggested team.")
    priority: str = Field(description="Final priority after business rules, escalations and crisis.")
    sla_deadline: datetime | None = Field(description="When the first response is due, in service time of the queue.")
    needs_human: bool = Field(description="A person confirms (suggest) or decides (human_triage) before acting.")
    confidence_tier: ConfidenceTier
    reply_channel: Literal["public", "private"] = Field(description="Where the reply should go.")
    out_of_hours: bool = Field(description="The queue's team is closed now.")
    auto_reply: str | None = Field(description="Italian out-of-hours message with the service hours, when closed.")
    crisis: bool = Field(description="The post matches an active social crisis and goes to management.")
    crisis_id: int | None = Field(default=None)
    pii: list[str] = Field(description="Kinds of personal data found in the text (never the data itself).")
    reasons: list[Reason]
    suggested_reply: str | None = Field(
        default=None, description="An Italian reply draft for the agent (routing.yaml, suggested_replies); never sent.")


class ContactHistory(BaseModel):
    """What the store knows of the author before this post (routing.yaml, contact_history)."""

    contacts: int = Field(description="Earlier posts of the same author within the lookback.")
    last_contact_at: datetime | None = Field(description="When the latest of them was routed.")
    last_intent: str | None = Field(description="Its predicted intent.")
    open_problems: int = Field(description="Earlier posts with a problem intent that no feedback marked resolved.")
    open_problem_post_id: str | None = Field(description="The latest open problem's post id.")
    open_problem_intent: str | None = Field(description="Its predicted intent.")
    open_problem_at: datetime | None = Field(description="When that problem was routed.")


class RoutedPost(BaseModel):
    id: str
    predictions: dict[str, HeadOutput]
    route: RouteDecision
    history: ContactHistory | None = Field(
        default=None, description="The author's earlier contacts; null when the post names no author "
                                  "(no customer_id, no handle) or the history is switched off.")
    replayed: bool = Field(
        default=False,
        description="This post id was routed before (an earlier request, or earlier in this one) with the same "
                    "content: this is the stored result, and nothing was stored or counted again.",
    )


class RouteResponse(BaseModel):
    model_version: str
    taxonomy_version: str
    routing_version: str
    results: list[RoutedPost] = Field(description="One per post, in request order.")


class FeedbackIn(_Request):
    """What the human agent finally decided for a routed post."""

    post_id: str = Field(min_length=1, max_length=200, description="The id returned by /route.")
    corrected_labels: dict[str, str | list[str]] | None = Field(
        default=None, description="Field -> the right label(s); a subset of fields is allowed."
    )
    handled_by_team: str | None = Field(default=None, max_length=100, description="Team that handled the post in the end.")
    resolved: bool = Field(description="Whether the customer's case was solved.")
    # Timestamps arrive as ISO strings, which strict mode refuses outside JSON parsing.
    first_response_at: AwareDatetime | None = Field(default=None, strict=False, description="First reply to the customer.")
    resolved_at: AwareDatetime | None = Field(default=None, strict=False, description="When the case was closed as solved.")
    agent_id: str | None = Field(default=None, max_length=200, description="Pseudonymous id of the agent.")
    satisfaction: int | None = Field(
        default=None, ge=1, le=5, description="The customer's satisfaction with the answer, 1 (poor) to 5 (excellent), "
                                              "when the care platform asked (a CSAT survey).")
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Any unique string per piece of feedback: a retry with the same key gets the stored receipt; the "
                    "same key with different content is refused (409). Without a key, feedback identical to the "
                    "latest of the same agent on the same post is not stored again.",
    )

    @field_validator("first_response_at", "resolved_at")
    @classmethod
    def _has_a_utc_time(cls, value: datetime | None) -> datetime | None:
        return value if value is None else check_utc_time(value)


class FeedbackReceipt(BaseModel):
    feedback_id: int
    post_id: str
    recorded_at: datetime
    replayed: bool = Field(default=False, description="The same feedback was stored before: this is its receipt.")


class CrisisView(BaseModel):
    id: int
    intent: str
    status: Literal["active", "ended"]
    started_at: datetime
    ended_at: datetime | None
    window_count: int = Field(description="Distinct authors of negative posts on the intent in the current window: "
                                          "what starts and ends a crisis (one author weighs one, however many posts).")
    window_posts: int = Field(description="Negative posts on the intent in the current window.")
    window_conversations: int = Field(description="Distinct conversations among them (posts that name one).")
    window_rate_per_hour: float
    baseline_per_hour: float = Field(description="Rate before the window (at least the configured floor).")
    peak_window_count: int
    flagged_posts: int = Field(description="Posts routed to management because of this crisis.")


class CrisisReport(BaseModel):
    evaluated_at: datetime
    window_minutes: int
    active: list[CrisisView]
    recently_ended: list[CrisisView] = Field(description="Crises that ended in the last 24 hours.")
