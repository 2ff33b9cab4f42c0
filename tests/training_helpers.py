"""Shared pieces of the training tests: a small synthetic data set a tiny model can learn in
seconds, recipes pointed at temporary folders, and a free port."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path

from data.dataset import BuildConfig, build_dataset
from training.recipe import load_recipe

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_RECIPE = REPO_ROOT / "configs" / "train" / "tiny.yaml"

# Each intent comes with its own words and a consistent set of the other labels, so a tiny model
# learns every head within a few epochs.
PROFILES = {
    "fatturazione": (["bolletta", "addebito", "fattura", "rimborso", "pagamento"],
                     "cliente_attivo", ["lamentela"], "alta", "negativo"),
    "assistenza_tecnica": (["modem", "linea", "internet", "app", "segnale"],
                           "cliente_attivo", [], "urgente", "negativo"),
    "elogio": (["grazie", "bravissimi", "complimenti", "ottimo", "gentilissimi"],
               "advocate", [], "bassa", "positivo"),
    "acquisto": (["offerta", "attivare", "preventivo", "abbonamento", "comprare"],
                 "potenziale_cliente", ["acquisto"], "normale", "neutro"),
}
FILLERS = ["oggi", "ancora", "per favore", "davvero", "ieri", "subito", "sempre", "qui"]


# Posts of every length and kind a predictor test needs: short, long, in-vocabulary, mixed.
SAMPLE_TEXTS = [
    "Grazie complimenti",
    "La bolletta ha un addebito doppio, voglio il rimborso subito per favore, è la terza volta che succede",
    "modem",
    "Vorrei attivare l'offerta, mi fate un preventivo?",
    "Internet e linea ancora giù da ieri, il modem lampeggia",
]


def synthetic_posts(count: int = 80, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    intents = list(PROFILES)
    posts = []
    for i in range(count):
        intent = intents[i % len(intents)]
        words, customer_type, actions, priority, sentiment = PROFILES[intent]
        text = " ".join(rng.sample(words, 3) + rng.sample(FILLERS, 2))
        posts.append({
            "id": f"syn-{i:04d}",
            "text": text.capitalize(),
            "channel": "twitter",
            "created_at": "2026-03-14T10:00:00+01:00",
            "labels": {"intent": intent, "customer_type": customer_type, "business_action": actions,
                       "priority": priority, "sentiment": sentiment},
        })
    return posts


def write_posts_file(path: Path, posts: list[dict]) -> Path:
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
    return path


def build_synthetic_dataset(directory: Path, count: int = 80) -> Path:
    source = write_posts_file(directory / "posts.jsonl", synthetic_posts(count))
    build_dataset(BuildConfig(inputs=[str(source)], output_dir=str(directory / "dataset"), seed=1))
    return directory / "dataset"


def tiny_recipe(dataset_dir: Path, output_dir: Path, tracking_uri: str, *overrides: str):
    """The tiny recipe, trained hard enough to learn the synthetic data (a few seconds)."""
    return load_recipe(
        TINY_RECIPE,
        [
            f"data.dataset_dir={dataset_dir}",
            f"output_dir={output_dir}",
            f"tracking.tracking_uri={tracking_uri}",
            "transformer.num_train_epochs=12",
            "transformer.learning_rate=3e-3",
            *overrides,
        ],
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
