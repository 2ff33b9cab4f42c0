"""The soak (benchmarks/speed/soak.py): a short one on a real `bentoml serve` of the tiny model, and the
verdict on memory and open files from made-up samples. The 10-minute figures with the default
model are in docs/SECURITY.md ("Soak")."""

from __future__ import annotations

import pytest

from benchmarks.speed.soak import LoadMix, Sample, SoakConfig, judge, run_soak
from smista.cli import main

pytest_plugins = ("tests.training_fixtures",)


def samples(rss: list[float], files: list[int]) -> list[Sample]:
    return [Sample(at_s=float(index), rss_mb=value, open_files=count, threads=10, processes=3)
            for index, (value, count) in enumerate(zip(rss, files))]


def test_growing_memory_or_open_files_is_not_flat():
    config = SoakConfig(model="unused", seconds=20, warmup_s=2, window_s=5, sample_every_s=1,
                        max_rss_growth_mb=10, max_open_files_growth=4)
    steady = samples([500 + (index % 3) for index in range(21)], [40] * 21)
    assert judge(steady, config, 20)[4] is True
    leaking_memory = samples([500 + 2 * index for index in range(21)], [40] * 21)
    flat, verdict = judge(leaking_memory, config, 20)[4:]
    assert flat is False and "RSS 509 -> 535 MB (+26 MB, bound +10)" in verdict
    leaking_files = samples([500] * 21, [40 + 2 * index for index in range(21)])
    flat, verdict = judge(leaking_files, config, 20)[4:]
    assert flat is False and "open files 49 -> 75 (+26, bound +4)" in verdict


def test_retries_and_feedback_are_drawn_only_once_something_was_routed():
    mix = LoadMix(["ciao"], "key", seed=3)
    drawn = {mix.next()[0] for _ in range(300)}
    assert not drawn & {"route_retry", "route_conflict", "feedback", "feedback_retry"}
    name, method, path, headers, body = "route_new", *mix._route_new()
    mix.answered(name, path, body, 200)
    retry = mix._route_retry()
    assert retry[3] == body  # a retry resends a body the server answered
    conflict = mix._route_conflict()[3]["posts"][0]
    assert conflict["id"] == body["posts"][0]["id"] and conflict["text"] != body["posts"][0]["text"]


def test_a_soak_shorter_than_warmup_and_window_is_refused(capsys):
    assert main(["serve", "soak", "--model", "unused", "--seconds", "30"]) == 2
    assert "--seconds: 30 s is shorter than the warm-up plus one window (120 s)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_short_soak_of_the_live_server_gets_only_expected_answers(tiny_run):
    config = SoakConfig(model=str(tiny_run.model_dir), seconds=30, concurrency=3, sample_every_s=1,
                        warmup_s=5, window_s=8)
    result = run_soak(config)
    assert result.unexpected == 0, result.unexpected_examples
    sent = {name: summary["statuses"] for name, summary in result.operations.items()}
    assert all(sent.values()), sent  # every operation of the mix went out
    # The refusals really happened, as the statuses the API documents.
    assert set(sent["route_conflict"]) == {"409"} and set(sent["feedback_unknown_post"]) == {"404"}
    assert set(sent["missing_key"]) == {"401"} and set(sent["oversized_body"]) == {"413"}
    assert set(sent["invalid_json"]) == {"400"} and set(sent["unknown_path"]) == {"404"}
    assert len(result.samples) >= 20
    assert all(sample.processes >= 2 and sample.rss_mb > 0 and sample.open_files > 0 for sample in result.samples)
    assert result.requests > 100
