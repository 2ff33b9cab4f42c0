"""The one place that talks to Label Studio: a thin layer over the label-studio-sdk 2.x client.

Every call goes through `_translate_errors`, so a server that is down, a token that is wrong or
expired, and a request the server refuses each become one error type with a message that says
what to do. The rest of labeling/ gets plain dicts (the tasks' JSON), never SDK model objects,
so an SDK upgrade touches this file only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from data.errors import UserError

DEFAULT_URL = "http://127.0.0.1:8080"
URL_VARIABLE = "LABEL_STUDIO_URL"
API_KEY_VARIABLE = "LABEL_STUDIO_API_KEY"
# Label Studio's data manager parses Datetime filter values with exactly this format.
_FILTER_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class LabelingError(UserError):
    """Base of every error labeling/ raises for a condition the user can fix."""


class LabelStudioUnavailableError(LabelingError):
    """The server cannot be reached (not started, wrong URL, or it went away mid-way)."""


class LabelStudioAuthError(LabelingError):
    """The server refused the API token, or the token has expired."""


class LabelStudioApiError(LabelingError):
    """The server answered a request with an error."""


@dataclass(frozen=True)
class ServerAddress:
    """Where the server is and which token to use."""

    url: str
    api_key: str

    @classmethod
    def from_environment(cls, url: str | None = None, api_key: str | None = None) -> ServerAddress:
        """Explicit values win; otherwise LABEL_STUDIO_URL (default 127.0.0.1:8080) and
        LABEL_STUDIO_API_KEY. A missing token is an error, not an anonymous request."""
        url = url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
        api_key = api_key or os.environ.get(API_KEY_VARIABLE)
        if not api_key:
            raise LabelStudioAuthError(
                f"no Label Studio API token: set {API_KEY_VARIABLE} (the server's LABEL_STUDIO_USER_TOKEN, "
                "or a personal access token from Account & Settings) or pass --api-key"
            )
        return cls(url=url.rstrip("/"), api_key=api_key)


@contextmanager
def _translate_errors(url: str, action: str) -> Iterator[None]:
    from label_studio_sdk.core.api_error import ApiError  # lazy: see LabelStudioClient.__init__

    try:
        yield
    except httpx.TransportError as exc:
        raise LabelStudioUnavailableError(
            f"Label Studio is not reachable at {url} while trying to {action} ({type(exc).__name__}: {exc}). "
            "Start it with `smista label server` or set LABEL_STUDIO_URL / --url to where it runs."
        ) from None
    except ApiError as exc:
        detail = _error_detail(exc.body)
        if exc.status_code in (401, 403) or "expired" in detail.lower():
            hint = (
                "the token has expired: create a new personal access token in Label Studio "
                "(Account & Settings) and set LABEL_STUDIO_API_KEY"
                if "expired" in detail.lower()
                else "check LABEL_STUDIO_API_KEY; a legacy token also needs "
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server"
            )
            raise LabelStudioAuthError(
                f"Label Studio at {url} refused the API token while trying to {action} "
                f"(HTTP {exc.status_code}: {detail}): {hint}"
            ) from None
        raise LabelStudioApiError(
            f"Label Studio at {url} answered HTTP {exc.status_code} while trying to {action}: {detail}"
        ) from None


def _error_detail(body: Any) -> str:
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("validation_errors") or body
        return detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
    return str(body)


def _as_dict(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json") if hasattr(model, "model_dump") else dict(model)


def filter_time(moment: datetime | str) -> str:
    """A tz-aware timestamp in the only format Label Studio's Datetime filters accept (UTC)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.utcoffset() is None:
        raise ValueError(f"timestamp {moment.isoformat()} has no timezone; Label Studio filters compare in UTC")
    return moment.astimezone(timezone.utc).strftime(_FILTER_TIME_FORMAT)


class LabelStudioClient:
    """The operations labeling/ needs, each with translated errors and plain-dict results."""

    def __init__(self, address: ServerAddress, timeout_s: float = 60.0):
        # Lazy: the CLI imports this module to build `smista label`'s parser, and the SDK's generated
        # client takes 0.4 s to import; only a command that talks to Label Studio pays it.
        from label_studio_sdk import LabelStudio

        self.url = address.url
        # The SDK decodes a JWT token (and rejects an expired one) when it is built: translate that too.
        with _translate_errors(self.url, "read the API token"):
            # No retries: a server that is down should fail at once with a clear message.
            self._sdk = LabelStudio(base_url=address.url, api_key=address.api_key, timeout=timeout_s, max_retries=0)

    @classmethod
    def connect(cls, address: ServerAddress) -> LabelStudioClient:
        """Build a client and prove that the server answers and accepts the token."""
        client = cls(address)
        client.whoami()
        return client

    def whoami(self) -> dict[str, Any]:
        with _translate_errors(self.url, "check the API token"):
            return _as_dict(self._sdk.users.whoami())

    # Projects
    def find_projects(self, title: str) -> list[dict[str, Any]]:
        """Projects whose title is exactly `title` (the server's filter matches substrings)."""
        with _translate_errors(self.url, f"look up project {title!r}"):
            found = [_as_dict(project) for project in self._sdk.projects.list(title=title)]
        return [project for project in found if project.get("title") == title]

    def get_project(self, project_id: int) -> dict[str, Any]:
        with _translate_errors(self.url, f"read project {project_id}"):
            return _as_dict(self._sdk.projects.get(id=project_id))

    def create_project(self, title: str, label_config: str, description: str, **settings: Any) -> dict[str, Any]:
        with _translate_errors(self.url, f"create project {title!r}"):
            return _as_dict(
                self._sdk.projects.create(title=title, label_config=label_config, description=description, **settings)
            )

    def update_project(self, project_id: int, **changes: Any) -> dict[str, Any]:
        with _translate_errors(self.url, f"update project {project_id}"):
            return _as_dict(self._sdk.projects.update(id=project_id, **changes))

    # Tasks
    def iter_tasks(
        self, project_id: int, *, updated_after: str | None = None, with_annotations: bool = True, page_size: int = 500
    ) -> Iterator[dict[str, Any]]:
        """Every task of the project (optionally only those updated after a server timestamp),
        with annotations and predictions when asked, oldest id first."""
        query: dict[str, Any] = {"ordering": ["tasks:id"]}
        if updated_after is not None:
            query["filters"] = {
                "conjunction": "and",
                "items": [
                    {
                        "filter": "filter:tasks:updated_at",
                        "operator": "greater",
                        "type": "Datetime",
                        "value": filter_time(updated_after),
                    }
                ],
            }
        with _translate_errors(self.url, f"list the tasks of project {project_id}"):
            pager = self._sdk.tasks.list(
                project=project_id,
                fields="all" if with_annotations else "task_only",
                query=json.dumps(query),
                page_size=page_size,
            )
            for task in pager:
                yield _as_dict(task)

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> list[int]:
        """Create tasks; returns their ids in the order given."""
        with _translate_errors(self.url, f"import {len(tasks)} tasks into project {project_id}"):
            response = self._sdk.projects.import_tasks(id=project_id, request=list(tasks), return_task_ids=True)
        task_ids = list(response.task_ids or [])
        if len(task_ids) != len(tasks):
            raise LabelStudioApiError(
                f"Label Studio created {len(task_ids)} tasks for {len(tasks)} sent to project {project_id}"
            )
        return task_ids

    def update_task_data(self, task_id: int, data: dict[str, Any]) -> None:
        with _translate_errors(self.url, f"update task {task_id}"):
            self._sdk.tasks.update(id=str(task_id), data=data)

    # Predictions and annotations
    def import_predictions(self, project_id: int, predictions: Sequence[dict[str, Any]]) -> int:
        """Attach predictions ({task, result, score, model_version}) in one request; returns the count."""
        from label_studio_sdk import PredictionRequest  # lazy: see __init__

        with _translate_errors(self.url, f"attach {len(predictions)} predictions in project {project_id}"):
            response = self._sdk.projects.import_predictions(
                id=project_id, request=[PredictionRequest(**prediction) for prediction in predictions]
            )
        return int(getattr(response, "created", len(predictions)) or 0)

    def create_annotation(
        self, task_id: int, result: list[dict[str, Any]], completed_by: int | None = None
    ) -> dict[str, Any]:
        """What an annotator's Submit does. `completed_by` (an admin recording for another user)
        defaults to the token's own user."""
        extra = {} if completed_by is None else {"completed_by": completed_by}
        with _translate_errors(self.url, f"annotate task {task_id}"):
            return _as_dict(self._sdk.annotations.create(id=task_id, result=result, **extra))

    def update_annotation(self, annotation_id: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        """What an annotator's Update does on an annotation already submitted."""
        with _translate_errors(self.url, f"update annotation {annotation_id}"):
            return _as_dict(self._sdk.annotations.update(id=annotation_id, result=result))

    def find_user(self, email: str) -> dict[str, Any] | None:
        """The user with this e-mail address, or None."""
        with _translate_errors(self.url, f"look up user {email}"):
            for user in self._sdk.users.list():
                if getattr(user, "email", None) == email:
                    return _as_dict(user)
        return None

    def create_user(self, email: str, first_name: str) -> dict[str, Any]:
        with _translate_errors(self.url, f"create user {email}"):
            return _as_dict(self._sdk.users.create(username=email.split("@")[0], email=email, first_name=first_name))
