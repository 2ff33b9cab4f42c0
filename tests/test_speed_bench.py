"""`smista serve bench`'s compute ceiling and report, without servers: the FLOPs count of a model
and the table of a result (tests/test_serving_integration.py runs real servers)."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.speed.bench import (
    BenchResult,
    Ceiling,
    EndpointResult,
    LatencySummary,
    format_result,
    measure_matmul,
    model_flops,
    model_shape,
    round_order,
    round_ratios,
)

pytest_plugins = ("tests.training_fixtures",)


def test_flops_count_the_linear_weights_and_the_attention_products(tiny_run):
    from training.inference.model import SmistaMultiHeadModel

    model = SmistaMultiHeadModel.from_pretrained(tiny_run.model_dir)
    config = model.config.encoder
    hidden, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    shape = model_shape(model)
    # Q, K, V, output (hidden x hidden each) and the two feed-forward layers, per layer; no pooler.
    assert shape["linear_params_per_token"] == layers * (4 * hidden * hidden + 2 * hidden * inner)
    assert shape["attention_width"] == hidden and shape["layers"] == layers
    labels = sum(len(spec["labels"]) for spec in model.config.heads.values())
    assert shape["head_params"] == hidden * labels
    tokens = 20
    expected = 2 * shape["linear_params_per_token"] * tokens + 4 * layers * hidden * tokens**2 + 2 * hidden * labels
    assert model_flops(tokens=tokens, **shape) == expected
    # The attention term grows with the square of the length.
    assert model_flops(tokens=40, **shape) - 2 * model_flops(tokens=20, **shape) == pytest.approx(
        4 * layers * hidden * (40**2 - 2 * 20**2) - 2 * hidden * labels)


def test_matmul_rate_is_measured_in_a_fresh_process():
    rate = measure_matmul(size=256, repeats=2)
    assert rate["best"] >= rate["median"] > 0 and len(rate["rates"]) == 2 and rate["threads"] >= 1


def summary(posts_per_second: float, share: float | None = None) -> LatencySummary:
    return LatencySummary(requests=10, failures=0, seconds=1.0, posts_per_second=posts_per_second, p50_ms=10.0,
                          p95_ms=20.0, p99_ms=30.0, mean_tokens=60.0, ceiling_share=share)


def test_the_report_has_a_row_per_runtime_and_the_ceiling():
    endpoints = {
        runtime: EndpointResult(runtime=runtime, model_version="model", light_load=summary(pps, 0.2),
                                concurrent_single=summary(pps * 2), batched=summary(pps * 3, 0.6),
                                route_light_load=summary(pps), light_after_load=summary(pps),
                                server_peak_rss_mb=900.0, server_processes=3, startup_seconds=12.0,
                                classifier_peak_rss_mb=450.0)
        for runtime, pps in (("torch", 30.0), ("onnx", 40.0), ("onnx-int8", 55.0))
    }
    ceiling = Ceiling(linear_params_per_token=10_616_832, head_params=10_752, layers=6, attention_width=384,
                      mean_tokens=60.0, flops_per_post=1.33e9, matmul_gflops=150.0, matmul_gflops_median=140.0,
                      matmul_size=2048, matmul_threads=2, posts_per_second=112.8)
    result = BenchResult(machine="2 cores", model="m", model_version="model", endpoints=endpoints,
                         plain=summary(50.0, 0.44), plain_model="teacher-dir", plain_model_version="teacher",
                         plain_process_peak_rss_mb=500.0, concurrency=16, batch_size=64,
                         ceiling=ceiling, plain_ceiling=dataclasses.replace(ceiling, layers=12, flops_per_post=3.99e9, posts_per_second=37.6),
                         export_seconds=18.0, load_average={"start": [0.1, 0.2, 0.3], "end": [1.0, 0.5, 0.3]},
                         ratios={"onnx-int8: batched_over_torch_batched": 1.83},
                         rounds={"torch": [90.0, 85.0], "onnx-int8": [165.0, 160.0], "plain": [50.0, 48.0]},
                         concurrent_rounds={"torch": [60.0, 62.0], "onnx-int8": [110.0, 111.0]})
    text = format_result(result)
    for title in ("torch fp32", "onnx fp32", "onnx int8"):
        assert f"{title}: /classify, 1 post, 1 client (light load)" in text
        assert f"{title}: /classify, 64 posts per request" in text
    assert "plain loop's model: teacher-dir (teacher)" in text
    assert "plain loop's model: 3.990 GFLOP per post (12 layers) -> ceiling 37.6 posts/s" in text
    assert "plain transformers loop of teacher, 1 post at a time (torch fp32)" in text
    assert "peak RSS 900.0 MB over 3 processes, Classifier worker 450.0 MB" in text
    assert "rounds, onnx int8, 1 post, 16 concurrent clients: 110.0 / 111.0 posts/s" in text
    assert "fp32 matmul: 150.0 GFLOP/s best" in text and "ceiling 112.8 posts/s" in text
    assert "60.0%" in text and "20.0%" in text and "load average" in text and "ONNX export" in text
    assert "rounds, onnx int8, 64/request: 165.0 / 160.0 posts/s" in text
    assert "rounds, plain loop (torch): 50.0 / 48.0 posts/s" in text
    at_ceiling = ceiling.matmul_gflops * 1e9 / ceiling.flops(60.0)
    assert ceiling.share(at_ceiling, 60.0) == pytest.approx(1.0, abs=0.001)
    assert ceiling.share(at_ceiling / 2, 60.0) == pytest.approx(0.5, abs=0.001)


def test_round_ratios_are_medians_of_each_rounds_own_ratios():
    rounds = {"torch": [50.0, 80.0, 60.0], "onnx-int8": [100.0, 120.0, 130.0], "plain": [40.0, 50.0, 60.0]}
    ratios = round_ratios(rounds)
    # int8 / torch per round: 2.0, 1.5, 2.17 -> 2.0; int8 / plain: 2.5, 2.4, 2.17 -> 2.4.
    assert ratios["onnx-int8: batched_over_torch_batched, median of 3 rounds"] == 2.0
    assert ratios["onnx-int8: batched_over_plain, median of 3 rounds"] == 2.4
    assert ratios["torch: batched_over_plain, median of 3 rounds"] == 1.25
    assert "torch: batched_over_torch_batched, median of 3 rounds" not in ratios
    # A round where the host slowed everything down moves the per-round ratios little.
    skewed = {"torch": [80.0, 40.0, 80.0], "onnx-int8": [120.0, 60.0, 120.0], "plain": [60.0, 30.0, 60.0]}
    assert round_ratios(skewed)["onnx-int8: batched_over_torch_batched, median of 3 rounds"] == 1.5
    assert round_ratios({}) == {}
    # The concurrent single-post phase, against the same rounds of the plain loop.
    concurrent = round_ratios({"onnx-int8": [80.0, 100.0, 120.0], "plain": [40.0, 50.0, 60.0]}, phase="concurrent")
    assert concurrent == {"onnx-int8: concurrent_over_plain, median of 3 rounds": 2.0}


def test_round_order_rotates_by_one_each_round():
    names = ["torch", "onnx", "onnx-int8", "plain"]
    assert round_order(names, 1) == names
    assert round_order(names, 2) == ["onnx", "onnx-int8", "plain", "torch"]
    assert round_order(names, 5) == names  # a full turn
    assert [round_order(names, number)[0] for number in range(1, 5)] == names  # each one leads once


def test_the_ceiling_reads_the_predictors_model_and_token_counts(tiny_run):
    """The bench loads its model once through the Predictor: the plain loop, the token counts and the
    FLOPs of the ceiling all come from it."""
    from benchmarks.speed.bench import BenchConfig, load_plain_model, measure_ceiling

    predictor = load_plain_model(str(tiny_run.model_dir))
    texts = ["ciao", "La bolletta di marzo è arrivata doppia, nessuno risponde al telefono da giorni"]
    lengths = predictor.token_counts(texts)
    tokenizer = predictor.transformer_backend().tokenizer
    assert lengths == [len(tokenizer(text)["input_ids"]) for text in texts] and lengths[0] < lengths[1]
    ceiling = measure_ceiling(predictor, lengths, BenchConfig(model=str(tiny_run.model_dir), matmul_size=256,
                                                              matmul_repeats=2))
    shape = model_shape(predictor.transformer_backend().model)
    assert ceiling.flops_per_post == model_flops(tokens=sum(lengths) / 2, **shape)
    assert ceiling.posts_per_second == pytest.approx(ceiling.matmul_gflops * 1e9 / ceiling.flops_per_post, rel=0.01)
    # The plain loop's model (a teacher) gets a ceiling of its own FLOPs on the same machine and posts.
    from benchmarks.speed.bench import ceiling_of

    halved = load_plain_model(str(tiny_run.model_dir))
    halved.transformer_backend().model.encoder.encoder.layer = halved.transformer_backend().model.encoder.encoder.layer[:1]
    halved.transformer_backend().model.config.encoder.num_hidden_layers = 1
    smaller = ceiling_of(halved, ceiling)
    assert smaller.layers == 1 and smaller.matmul_gflops == ceiling.matmul_gflops
    assert smaller.flops_per_post < ceiling.flops_per_post
    assert smaller.posts_per_second == pytest.approx(ceiling.matmul_gflops * 1e9 / smaller.flops_per_post, rel=0.01)
