"""Create or update the Label Studio project from the taxonomy, idempotently.

Run it any number of times: the first run creates the project, later runs do nothing while the
taxonomy is unchanged, and a changed taxonomy updates the labeling config, unless existing
annotations use a field or label the new taxonomy no longer has. Label Studio 1.23 itself accepts
such a config (it does not check aliased Choices), which would silently orphan those annotations;
we refuse and name them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from data.taxonomy import Taxonomy
from labeling.client import LabelingError, LabelStudioClient
from labeling.config import build_label_config, config_fingerprint

ProjectAction = Literal["created", "updated", "unchanged"]


class ProjectNotFoundError(LabelingError):
    """No project with the configured title (or more than one)."""


class OrphanedAnnotationsError(LabelingError):
    """A taxonomy change would leave existing annotations pointing at labels that no longer exist."""

    def __init__(self, orphans: dict[tuple[str, str], int]):
        self.orphans = orphans
        listed = ", ".join(
            f"{field}.{label} ({count} annotation{'s' if count != 1 else ''})"
            for (field, label), count in sorted(orphans.items())
        )
        super().__init__(
            f"refusing to update the labeling config: existing annotations use labels the new taxonomy "
            f"does not have: {listed}. Relabel or delete those annotations first, or keep the labels "
            "(label ids change only with a new taxonomy version and a migration)"
        )


@dataclass(frozen=True)
class ProjectResult:
    project_id: int
    action: ProjectAction
    taxonomy_version: str
    config_fingerprint: str


def project_description(taxonomy: Taxonomy, label_config: str) -> str:
    return (
        f"Post di customer care da etichettare. Generato da smista: tassonomia v{taxonomy.version}, "
        f"config {config_fingerprint(label_config)}. Non modificare l'interfaccia a mano: "
        "cambia configs/taxonomy.yaml ed esegui `smista label project`."
    )


def find_project_id(client: LabelStudioClient, title: str) -> int:
    found = client.find_projects(title)
    if not found:
        raise ProjectNotFoundError(
            f"no Label Studio project titled {title!r} on {client.url}: create it with `smista label project`"
        )
    if len(found) > 1:
        ids = ", ".join(str(project["id"]) for project in found)
        raise ProjectNotFoundError(
            f"{len(found)} projects are titled {title!r} (ids {ids}); rename or delete the extra ones"
        )
    return int(found[0]["id"])


def orphaned_labels(client: LabelStudioClient, project_id: int, taxonomy: Taxonomy) -> dict[tuple[str, str], int]:
    """(field, label) -> number of annotations using it, for every label the taxonomy lacks.
    A field the taxonomy lacks is reported with each of its labels."""
    orphans: Counter[tuple[str, str]] = Counter()
    for task in client.iter_tasks(project_id):
        for annotation in task.get("annotations") or []:
            for item in annotation.get("result") or []:
                field_name = item.get("from_name")
                choices = (item.get("value") or {}).get("choices") or []
                known = taxonomy.fields[field_name].label_ids if field_name in taxonomy.fields else []
                for label in choices:
                    if label not in known:
                        orphans[(field_name, label)] += 1
    return dict(orphans)


def ensure_project(
    client: LabelStudioClient, taxonomy: Taxonomy, title: str, annotators_per_task: int = 1
) -> ProjectResult:
    """Create the project, update its config, or leave it alone; see the module docstring."""
    if annotators_per_task < 1:
        raise ValueError(f"annotators_per_task must be at least 1, got {annotators_per_task}")
    label_config = build_label_config(taxonomy)
    description = project_description(taxonomy, label_config)
    fingerprint = config_fingerprint(label_config)
    found = client.find_projects(title)
    if len(found) > 1:
        find_project_id(client, title)  # raises, naming the duplicates
    if not found:
        project = client.create_project(
            title=title,
            label_config=label_config,
            description=description,
            # Several annotators per task give the agreement figures; tasks come in id order, which is
            # the order the importer and the active-learning command push them.
            maximum_annotations=annotators_per_task,
            sampling="Sequential sampling",
            show_skip_button=True,
            show_collab_predictions=True,
        )
        return ProjectResult(int(project["id"]), "created", taxonomy.version, fingerprint)

    project_id = int(found[0]["id"])
    current = client.get_project(project_id)
    if current.get("label_config") == label_config and current.get("maximum_annotations") == annotators_per_task:
        return ProjectResult(project_id, "unchanged", taxonomy.version, fingerprint)
    if current.get("label_config") != label_config:
        orphans = orphaned_labels(client, project_id, taxonomy)
        if orphans:
            raise OrphanedAnnotationsError(orphans)
    client.update_project(
        project_id, label_config=label_config, description=description, maximum_annotations=annotators_per_task
    )
    return ProjectResult(project_id, "updated", taxonomy.version, fingerprint)
