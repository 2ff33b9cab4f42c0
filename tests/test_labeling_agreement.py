from __future__ import annotations

import pytest

from labeling.agreement import agreement_by_field, cohen_kappa, fleiss_kappa
from labeling.resolution import resolve


def test_cohen_kappa_textbook_example():
    # 50 items: both yes 20, first yes / second no 5, first no / second yes 10, both no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4
    first = ["si"] * 20 + ["si"] * 5 + ["no"] * 10 + ["no"] * 15
    second = ["si"] * 20 + ["no"] * 5 + ["si"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_cohen_kappa_small_hand_computed():
    # p_o = 3/4; p_e = 0.5*0.25 + 0.5*0.75 = 0.5; kappa = 0.25 / 0.5 = 0.5
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx(0.5)


def test_cohen_kappa_undefined_when_one_category_only():
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None
    with pytest.raises(ValueError, match="pair them first"):
        cohen_kappa(["a"], ["a", "b"])


FLEISS_TABLE = [  # 10 items, 14 raters, 5 categories (Fleiss 1971, as in most textbooks): kappa 0.210
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_textbook_example():
    items = [[category for category, n in enumerate(row) for _ in range(n)] for row in FLEISS_TABLE]
    assert fleiss_kappa(items) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_with_two_raters_and_varying_counts():
    # Items: (a,a) (a,b) (b,b,b); single-rating items are ignored.
    # P_i = 1, 0, 1 -> P = 2/3; pooled shares a = 3/7, b = 4/7 -> P_e = 25/49
    # kappa = (2/3 - 25/49) / (1 - 25/49) = (98 - 75) / (147 - 75) = 23/72
    assert fleiss_kappa([["a", "a"], ["a", "b"], ["b", "b", "b"], ["a"]]) == pytest.approx(23 / 72)
    assert fleiss_kappa([["a"]]) is None


def test_agreement_per_field_splits_multi_label_fields(taxonomy):
    def labels(intent, actions):
        return {"intent": intent, "customer_type": "cliente_attivo", "business_action": actions,
                "priority": "normale", "sentiment": "neutro"}

    tasks = [
        {"ann1": labels("reclamo", ["lamentela"]), "ann2": labels("reclamo", ["lamentela"])},
        {"ann1": labels("reclamo", ["disdetta"]), "ann2": labels("fatturazione", [])},
        {"ann1": labels("fatturazione", []), "ann2": labels("fatturazione", [])},
    ]
    agreement = agreement_by_field(tasks, taxonomy)
    # intent: (r,r) (r,f) (f,f): p_o = 2/3; ann1 r 2/3 f 1/3, ann2 r 1/3 f 2/3 -> p_e = 4/9
    # Cohen's kappa = (2/3 - 4/9) / (1 - 4/9) = 2/5
    assert agreement["intent"].cohen_kappa["ann1|ann2"] == {"kappa": pytest.approx(0.4), "items": 3}
    assert agreement["intent"].items == 3
    assert "business_action.disdetta" in agreement and "business_action" not in agreement
    # every rating of 'rinnovo' is "absent": chance agreement is 1, kappa undefined
    assert agreement["business_action.rinnovo"].fleiss_kappa is None
    assert agreement["customer_type"].fleiss_kappa is None


def _labels(intent="reclamo", actions=("lamentela",), priority="alta"):
    return {"intent": intent, "customer_type": "lamentoso", "business_action": list(actions),
            "priority": priority, "sentiment": "negativo"}


def test_majority_resolves_two_of_three(taxonomy):
    result = resolve([_labels(), _labels(), _labels(intent="fatturazione", actions=())], taxonomy)
    assert result.labels == _labels()
    assert result.disagreements == {}


def test_tie_between_two_annotators_is_flagged_not_guessed(taxonomy):
    result = resolve([_labels(priority="alta"), _labels(priority="urgente")], taxonomy)
    assert result.labels is None
    assert result.disagreements == {"priority": {"alta": 1, "urgente": 1}}


def test_multi_label_tie_is_flagged(taxonomy):
    result = resolve([_labels(actions=["lamentela", "disdetta"]), _labels(actions=["lamentela"])], taxonomy)
    assert result.labels is None and "business_action" in result.disagreements


def test_three_way_split_is_flagged_and_unanimous_is_stricter(taxonomy):
    split = [_labels(intent="reclamo"), _labels(intent="fatturazione"), _labels(intent="informazioni")]
    assert resolve(split, taxonomy).disagreements["intent"] == {"reclamo": 1, "fatturazione": 1, "informazioni": 1}
    two_of_three = [_labels(), _labels(), _labels(intent="fatturazione")]
    assert resolve(two_of_three, taxonomy, "unanimous").labels is None
    assert resolve([_labels()], taxonomy, "unanimous").labels == _labels()


def test_unknown_strategy_is_refused(taxonomy):
    with pytest.raises(ValueError, match="majority, unanimous"):
        resolve([_labels()], taxonomy, "coin_toss")
