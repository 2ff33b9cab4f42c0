"""The demo store: synthetic weeks routed by a real (tiny) model through the real pipeline, with
feedback, a campaign and a crisis; then `smista report` and `smista forecast` on it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from operations.demo_store import DemoSettings, DemoStoreError, build_demo_store, load_demo_posts
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.rules import load_routing_rules
from serving.store import CrisisEpisode, Feedback, ModelReference, PredictionStore, RoutedPost
from smista.cli import main
from tests.training_helpers import synthetic_posts
from training.inference.predict import Predictor

pytest_plugins = ("tests.training_fixtures",)

END = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def posts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "posts.jsonl"
    path.write_text("".join(json.dumps(post) + "\n" for post in synthetic_posts(80, seed=4)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def demo_store(tiny_run, posts_file, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('demo-store') / 'demo.sqlite'}"
    code = main(["demo-store", str(posts_file), "--model", str(tiny_run.model_dir), "--database-url", url,
                 "--weeks", "2", "--posts-per-day", "25", "--end", END.isoformat()])
    assert code == 0
    return url


def counts(url: str) -> tuple[int, int, int, int]:
    store = PredictionStore(url)
    with store.session() as session:
        result = tuple(session.scalar(select(func.count()).select_from(table))
                       for table in (RoutedPost, Feedback, CrisisEpisode, ModelReference))
    store.close()
    return result


def test_the_demo_fills_a_store_with_posts_feedback_a_crisis_and_the_model_reference(demo_store):
    posts, feedback, crises, references = counts(demo_store)
    # 2 weeks at about 25 posts a weekday (less at weekends), plus the crisis burst of 70.
    assert 280 < posts < 560
    assert 0.5 * posts < feedback < posts
    assert crises >= 1
    assert references == 1
    store = PredictionStore(demo_store)
    with store.session() as session:
        times = session.execute(select(func.min(RoutedPost.received_at), func.max(RoutedPost.received_at))).one()
        first_responses = session.scalars(select(Feedback.first_response_at)).all()
        satisfaction = [s for s in session.scalars(select(Feedback.satisfaction)) if s is not None]
    store.close()
    assert times[0] >= END.replace(day=16) and times[1] < END
    assert all(moment is not None for moment in first_responses)
    assert satisfaction and set(satisfaction) <= {1, 2, 3, 4, 5}


def test_the_demo_is_reproducible_and_never_writes_into_a_store_with_posts(tiny_run, posts_file, demo_store,
                                                                         tmp_path, taxonomy, capsys):
    rules = load_routing_rules(DEFAULT_ROUTING_PATH, taxonomy)
    posts = load_demo_posts([posts_file], taxonomy)
    predictor = Predictor.load(str(tiny_run.model_dir))
    url = f"sqlite:///{tmp_path / 'again.sqlite'}"
    report = build_demo_store(DemoSettings(database_url=url, weeks=2, posts_per_day=25, end=END), predictor, rules, posts)
    assert counts(url) == counts(demo_store)
    assert report.posts == counts(url)[0]
    before = counts(demo_store)
    with pytest.raises(DemoStoreError, match="already holds"):
        build_demo_store(DemoSettings(database_url=demo_store, weeks=1, end=END), predictor, rules, posts)
    code = main(["demo-store", str(posts_file), "--model", str(tiny_run.model_dir), "--database-url", demo_store])
    assert code == 2 and "another --database-url" in capsys.readouterr().err
    assert counts(demo_store) == before


def test_report_and_forecast_on_the_demo_store(demo_store, tmp_path, capsys):
    output = tmp_path / "report.html"
    code = main(["report", "--database-url", demo_store, "--until", END.isoformat(), "--output", str(output),
                 "--json", str(tmp_path / "report.json"), "--history-weeks", "2", "--backtest-weeks", "0"])
    assert code == 0
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert document["summary"]["posts"] > 150 and document["tables"]["crises"]
    assert document["tables"]["forecast_daily"] and document["tables"]["drift"]
    html = output.read_text(encoding="utf-8")
    assert "Previsione dei picchi" in html and "crisi 1" in html
    capsys.readouterr()
    code = main(["forecast", "--database-url", demo_store, "--start", END.isoformat(), "--history-weeks", "2",
                 "--backtest-weeks", "0", "--format", "json"])
    assert code == 0
    forecast = json.loads(capsys.readouterr().out)
    teams = {row["team"] for row in forecast["hourly"]}
    assert "customer_care" in teams and len(forecast["hourly"]) == 168 * len(teams)
