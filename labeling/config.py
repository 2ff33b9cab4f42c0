"""The Label Studio labeling interface, generated from the taxonomy, and the conversions between
Label Studio's `result` JSON and our label dicts.

Nothing here restates a label: every Choices block, hint and hotkey comes from configs/taxonomy.yaml.
Each Choice shows the Italian display name and stores the label id (Label Studio's `alias`), so
exports carry ids while annotators read names.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from typing import Any

from data.errors import UserError
from data.taxonomy import Taxonomy

TEXT_TAG = "text"  # the name of the <Text> object every Choices block points at
# Single keys in keyboard order. Label Studio binds "u" (unselect region) in text interfaces;
# modifier combinations (ctrl+enter submit, ctrl+space skip, ...) never collide with single keys.
HOTKEY_POOL = "1234567890qwertyiopasdfghjklzxcvbnm"
RESERVED_HOTKEYS = frozenset("u")


class LabelConfigError(UserError, ValueError):
    """The taxonomy cannot be shown as one Label Studio interface (e.g. too many labels for the keys)."""


def assign_hotkeys(taxonomy: Taxonomy) -> dict[tuple[str, str], str]:
    """(field, label id) -> one key, unique across the whole interface, in taxonomy order."""
    keys = [key for key in HOTKEY_POOL if key not in RESERVED_HOTKEYS]
    pairs = [(name, label.id) for name, spec in taxonomy.fields.items() for label in spec.labels]
    if len(pairs) > len(keys):
        raise LabelConfigError(
            f"the taxonomy has {len(pairs)} labels but only {len(keys)} single-key hotkeys exist; "
            "extend HOTKEY_POOL with modifier combinations"
        )
    return dict(zip(pairs, keys))


def build_label_config(taxonomy: Taxonomy) -> str:
    """The labeling config XML: the post with its channel and author, then one Choices per field."""
    hotkeys = assign_hotkeys(taxonomy)
    view = ET.Element("View")
    post = ET.SubElement(view, "View", style="padding: 8px 12px; margin-bottom: 12px; border-left: 4px solid #1f6feb;")
    # $source_line is prepared by the importer: channel, author placeholder, followers, visibility, date.
    ET.SubElement(post, "Header", value="$source_line", size="6")
    ET.SubElement(post, "Text", name=TEXT_TAG, value="$text")
    fields_view = ET.SubElement(
        view, "View", style="display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 4px 24px;"
    )
    for name, spec in taxonomy.fields.items():
        _check_unique_display_names(name, spec)
        if "$" in spec.description:
            raise LabelConfigError(f"field {name}: description contains '$', which Label Studio reads as a task variable")
        block = ET.SubElement(fields_view, "View")
        kind = "una sola scelta" if not spec.is_multi_label else "zero o più scelte"
        ET.SubElement(block, "Header", value=f"{spec.name} ({kind})", size="5")
        # A second <Header> renders as large as the title; a <Text> with a literal value reads as prose.
        ET.SubElement(block, "Text", name=f"{name}_guida", value=spec.description)
        choices = ET.SubElement(
            block,
            "Choices",
            name=name,
            toName=TEXT_TAG,
            choice="multiple" if spec.is_multi_label else "single-radio",
            showInline="false",
        )
        if not spec.is_multi_label:
            choices.set("required", "true")
            choices.set("requiredMessage", f"Scegli un valore per «{spec.name}»")
        for label in spec.labels:
            ET.SubElement(
                choices,
                "Choice",
                value=label.name,
                alias=label.id,
                hint=f"{label.description} Come decidere: {label.guidance}",
                hotkey=hotkeys[(name, label.id)],
            )
    ET.indent(view, space="  ")
    return ET.tostring(view, encoding="unicode")


def _check_unique_display_names(field_name: str, spec) -> None:
    names = [label.name for label in spec.labels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LabelConfigError(f"field {field_name}: display name(s) {duplicates} used by more than one label")


def config_fingerprint(label_config: str) -> str:
    return hashlib.sha256(label_config.encode("utf-8")).hexdigest()[:12]


def labels_to_result(labels: dict[str, Any], taxonomy: Taxonomy, scores: dict[str, float] | None = None) -> list[dict]:
    """Our label dict -> Label Studio `result` items (one per field; an empty multi-label field is left out,
    which is how Label Studio stores "nothing selected")."""
    result = []
    for name, spec in taxonomy.fields.items():
        if name not in labels:
            continue
        value = labels[name]
        choices = list(value) if spec.is_multi_label else [value]
        if not choices:
            continue
        item: dict[str, Any] = {
            "from_name": name,
            "to_name": TEXT_TAG,
            "type": "choices",
            "value": {"choices": choices},
        }
        if scores is not None and name in scores:
            item["score"] = round(float(scores[name]), 6)
        result.append(item)
    return result


def result_to_labels(result: list[dict[str, Any]], taxonomy: Taxonomy) -> dict[str, Any]:
    """Label Studio `result` items -> our label dict. Multi-label fields absent from the result are
    empty lists; single-label fields absent from it stay absent. Unknown fields are kept as they are,
    so validation against the taxonomy can name them."""
    labels: dict[str, Any] = {
        name: [] for name, spec in taxonomy.fields.items() if spec.is_multi_label
    }
    for item in result:
        if item.get("type") != "choices":
            continue
        name = item.get("from_name")
        choices = list((item.get("value") or {}).get("choices") or [])
        spec = taxonomy.fields.get(name)
        if spec is not None and not spec.is_multi_label:
            labels[name] = choices[0] if len(choices) == 1 else choices
        else:
            labels[name] = choices
    return labels
