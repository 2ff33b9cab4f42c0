"""The console entry point, run as a user runs it: a real subprocess."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import make_post

INTENTS = ["informazioni", "reclamo", "elogio", "fuori_tema"]


def smista(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smista", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_subcommands():
    result = smista("--help")
    assert result.returncode == 0
    for group in ("data", "taxonomy"):
        assert group in result.stdout
    data_help = smista("data", "--help").stdout
    assert "build" in data_help and "validate" in data_help


HEAVY_LIBRARIES = ("torch", "transformers", "mlflow", "sklearn", "bentoml", "ray", "statsmodels", "onnxruntime",
                   "datasets", "sqlalchemy")


def test_building_the_parser_imports_no_heavy_library():
    """`smista --help` and argument errors stay instant: the command modules only register their
    flags; a command's libraries load when that command runs (smista.cli.resolve)."""
    code = ("import sys, smista.cli; smista.cli.build_parser(); "
            f"print(','.join(name for name in {HEAVY_LIBRARIES!r} if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == ""


def test_data_build_writes_the_split_and_prints_counts_per_split(tmp_path, write_jsonl):
    rows = [make_post(f"p{i:03d}", intent=INTENTS[i % 4]) for i in range(40)]
    source = write_jsonl("seed.jsonl", rows)
    result = smista("data", "build", "--inputs", str(source), "--output-dir", str(tmp_path / "out"), "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "train 28, validation 4, test 8" in result.stdout
    # one row per label with a column per split and the total
    row = next(line for line in result.stdout.splitlines() if line.startswith("intent") and " reclamo " in line)
    assert row.split()[2:] == ["7", "1", "2", "10"]
    assert (tmp_path / "out" / "hf" / "dataset_dict.json").exists()


def test_data_validate_reports_line_numbers_and_fails(write_jsonl):
    path = write_jsonl("posts.jsonl", [make_post("a"), "{oops", make_post("b", channel="fax")])
    strict = smista("data", "validate", str(path))
    assert strict.returncode == 2
    assert f"{path}:2: not valid JSON" in strict.stderr
    lenient = smista("data", "validate", "--keep-going", str(path))
    assert lenient.returncode == 1
    assert f"{path}:3:" in lenient.stderr and "unknown channel 'fax'" in lenient.stderr
    assert "1 valid posts, 2 bad lines" in lenient.stdout


def test_bad_taxonomy_is_a_clear_error_not_a_traceback(tmp_path):
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text("version: 1\nfields: {}\nchannels: []\n", encoding="utf-8")
    result = smista("taxonomy", "show", "--taxonomy", str(bad))
    assert result.returncode == 2
    assert "smista: error:" in result.stderr and "fields: no fields" in result.stderr
    assert "Traceback" not in result.stderr
