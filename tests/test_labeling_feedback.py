from __future__ import annotations

from datetime import datetime, timezone

import pytest
from labeling_doubles import FakeLabelStudio

from labeling.feedback import Correction, FeedbackError, push_corrections
from smista.label_handlers import corrections_from_store

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=timezone.utc)
PREDICTED = {"intent": "informazioni", "customer_type": "cliente_attivo", "business_action": [],
             "priority": "normale", "sentiment": "neutro"}


def _store_with_feedback(tmp_path):
    from serving.store import Feedback, PredictionStore, RoutedPost

    store = PredictionStore(f"sqlite:///{tmp_path / 'serving.db'}")
    outputs = {name: {"labels": value if isinstance(value, list) else [value], "probabilities": {}, "confidence": 0.6}
               for name, value in PREDICTED.items()}

    def routed(post_id: str, text: str | None) -> RoutedPost:
        return RoutedPost(
            post_id=post_id, received_at=NOW, created_at=NOW, channel="twitter", public=True, sector="telco",
            customer_id="CRM-000001", author_followers=12, text=text, model_version="smista-classifier/3",
            taxonomy_version="1", routing_version="1", predictions=outputs, intent="informazioni",
            sentiment="neutro", action="route", queue="care", team="customer_care", priority="normale",
            confidence_tier="medium", needs_human=False, crisis_id=None, sla_deadline=None, reply_channel="public",
            out_of_hours=False, pii_kinds=[], reasons=[],
        )

    store.add_routed_posts([
        routed("t-1", "Mi avete addebitato due volte, chiamatemi al 333 123 4567"),
        routed("t-2", "Che orari ha il negozio?"),
        routed("t-3", None),
    ])
    for post_id, corrected in [("t-1", {"intent": "fatturazione", "priority": "alta"}),
                               ("t-2", {"intent": "informazioni"}),
                               ("t-3", {"intent": "reclamo"}),
                               ("t-2", None)]:
        store.add_feedback(Feedback(post_id=post_id, recorded_at=NOW, corrected_labels=corrected, resolved=True,
                                    agent_id="agente-7"))
    store.close()
    return f"sqlite:///{tmp_path / 'serving.db'}"


def test_corrections_become_redacted_review_tasks_with_the_correction_prefilled(tmp_path, validator, taxonomy):
    url = _store_with_feedback(tmp_path)
    corrections, skipped, last_id = corrections_from_store(url, 0, validator)
    assert [c.post.id for c in corrections] == ["t-1", "t-2"] and last_id == 4
    assert skipped == ["feedback 3 (post t-3): the post text was not stored"]

    ls = FakeLabelStudio()
    ls.create_project("smista", "<View/>", "")
    report = push_corrections(ls, 1, corrections, validator, [])
    assert report.pushed == [1] and report.agreeing == [2]  # t-2's agent confirmed the model
    task = ls.tasks[1]
    assert "333 123 4567" not in task["data"]["text"] and "[TELEFONO]" in task["data"]["text"]
    assert task["data"]["origin"] == "feedback"
    assert task["data"]["review"]["fields"] == ["intent", "priority"]
    prediction = task["predictions"][0]
    assert prediction["model_version"] == "feedback:smista-classifier/3"
    chosen = {item["from_name"]: item["value"]["choices"] for item in prediction["result"]}
    assert chosen["intent"] == ["fatturazione"] and chosen["priority"] == ["alta"] and chosen["sentiment"] == ["neutro"]

    assert corrections_from_store(url, last_id, validator)[0] == []  # the cursor moves past what was read


def test_correction_with_an_unknown_label_is_named(validator):
    post = validator.validate({"id": "t-9", "text": "ciao", "channel": "twitter"})
    bad = Correction(feedback_id=9, post=post, predicted=PREDICTED, corrected={"intent": "boh"},
                     model_version="m", agent_id=None, recorded_at=NOW)
    with pytest.raises(FeedbackError, match="feedback 9 .*unknown label id 'boh'"):
        push_corrections(FakeLabelStudio(), 1, [bad], validator, [])


def test_correction_of_a_post_already_in_the_project_goes_on_its_task(tmp_path, validator):
    url = _store_with_feedback(tmp_path)
    corrections, _, _ = corrections_from_store(url, 0, validator)
    ls = FakeLabelStudio()
    ls.create_project("smista", "<View/>", "")
    from labeling.importer import import_posts

    import_posts(ls, 1, [corrections[0].post], validator, [])
    push_corrections(ls, 1, corrections, validator, [])
    assert len(ls.tasks) == 1
    assert ls.tasks[1]["data"]["origin"] == "import" and ls.tasks[1]["data"]["review"]["feedback_id"] == 1
    assert ls.tasks[1]["predictions"][0]["model_version"] == "feedback:smista-classifier/3"
