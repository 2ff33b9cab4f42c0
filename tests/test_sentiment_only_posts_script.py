"""scripts/sentiment_only_posts.py: SENTIPOLC and FEEL-IT rows become sentiment-only posts that
the data build accepts with --partial-labels (files made up here in the corpora's layouts)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from data.dataset import BuildConfig, build_dataset
from tests.training_helpers import REPO_ROOT, synthetic_posts, write_posts_file

SCRIPT = REPO_ROOT / "scripts" / "sentiment_only_posts.py"


def write_corpora(tmp_path):
    sentipolc = tmp_path / "sentipolc.csv"
    header = '"idtwitter";"subj";"opos";"oneg";"iro";"lpos";"lneg";"top";"text"\n'
    flags = [("1", "0"), ("0", "1"), ("0", "0"), ("1", "1")] * 5  # the last of each four is mixed: left out
    sentipolc.write_text(header + "".join(f'"{100 + i}";"1";"{p}";"{n}";"0";"0";"0";"1";"tweet numero {i}"\n'
                                          for i, (p, n) in enumerate(flags)), encoding="utf-8")
    feel_it = tmp_path / "feel_it.csv"
    emotions = ["joy (R)", "anger", "sadness", "fear"] * 3
    feel_it.write_text("text,labels\n" + "".join(f'"emozione {i}, davvero",{e}\n' for i, e in enumerate(emotions)),
                       encoding="utf-8")
    return sentipolc, feel_it


def run(*args) -> list[dict]:
    subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], check=True, cwd=REPO_ROOT, capture_output=True)
    out = args[args.index("--out") + 1]
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_polarities_map_to_sentiment_only_labels(tmp_path):
    sentipolc, feel_it = write_corpora(tmp_path)
    posts = run("--sentipolc", sentipolc, "--feel-it", feel_it, "--out", tmp_path / "out.jsonl")
    assert all(set(post["labels"]) == {"sentiment"} for post in posts)
    by_id = {post["id"]: post["labels"]["sentiment"] for post in posts}
    assert by_id["sentipolc-100"] == "positivo" and by_id["sentipolc-101"] == "negativo"
    assert by_id["sentipolc-102"] == "neutro" and "sentipolc-103" not in by_id  # mixed left out
    assert by_id["feelit-1"] == "positivo" and by_id["feelit-2"] == "negativo"
    assert len(posts) == 15 + 12
    limited = run("--sentipolc", sentipolc, "--feel-it", feel_it, "--out", tmp_path / "few.jsonl", "--limit", 9)
    assert Counter(post["labels"]["sentiment"] for post in limited) == {"positivo": 3, "negativo": 3, "neutro": 3}

    # The data build takes them as training-only partial posts.
    seed = write_posts_file(tmp_path / "seed.jsonl", synthetic_posts(40))
    result = build_dataset(BuildConfig(inputs=[str(seed)], train_only_inputs=[str(tmp_path / "out.jsonl")],
                                       partial_labels=True, output_dir=str(tmp_path / "ds")))
    assert sum(post.id.startswith(("sentipolc-", "feelit-")) for post in result.splits["train"]) == 27
