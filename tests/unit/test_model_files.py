"""meta.json and champion.json: one schema and one loader (textrnn.model_files), so each problem
gives one message, one line naming the file, wherever the file is read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from textrnn import model_files
from textrnn.errors import DataError, UserError
from textrnn.model_files import read_champion, read_meta

META = {"task": "sentiment", "model": "lstm", "kind": "lstm", "classes": ["negative", "positive"],
        "dataset": "uci", "trained_at": "2025-01-02T03:04:05+00:00", "git_commit": "abc",
        "mlflow_run_id": "run-1", "val_metrics": {"accuracy": 0.8}, "tuned": False,
        "tuned_values": {}, "pretrained_embedding_coverage": None}


def model_dir(tmp_path: Path, content: object) -> Path:
    folder = tmp_path / "models" / "sentiment" / "lstm" / "model"
    folder.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    (folder / "meta.json").write_text(text, encoding="utf-8")
    return folder


def champion_dir(tmp_path: Path, content: object, *, raw: bool = False) -> Path:
    (tmp_path / "sentiment").mkdir(parents=True, exist_ok=True)
    text = content if raw else json.dumps(content)
    (tmp_path / "sentiment" / "champion.json").write_text(text, encoding="utf-8")
    return tmp_path


def message(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text, text
    assert isinstance(info.value, UserError)
    return text


# ----------------------------------------------------------------------------- meta.json


def test_missing_meta(tmp_path):
    folder = tmp_path / "nowhere"
    assert message(read_meta, folder, task="sentiment") == (
        f"{folder / 'meta.json'}: file not found (run `dvc repro train_sentiment` first)")
    assert message(read_meta, folder) == f"{folder / 'meta.json'}: file not found"


def test_unreadable_meta(tmp_path):
    folder = model_dir(tmp_path, "{not json")
    assert message(read_meta, folder) == (
        f"{folder / 'meta.json'}: unreadable (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))")


def test_meta_that_is_not_an_object(tmp_path):
    folder = model_dir(tmp_path, ["negative", "positive"])
    assert message(read_meta, folder) == f"{folder / 'meta.json'}: expected a JSON object"


def test_meta_of_another_task(tmp_path):
    folder = model_dir(tmp_path, {**META, "task": "charlm"})
    assert message(read_meta, folder, task="sentiment") == (
        f"{folder / 'meta.json'}: task is 'charlm', expected 'sentiment'")
    folder = model_dir(tmp_path, {**META, "task": "poetry"})
    assert message(read_meta, folder) == (
        f"{folder / 'meta.json'}: task is 'poetry', expected one of 'sentiment', 'charlm'")


@pytest.mark.parametrize("classes", [["only"], ["a", "a"], "ab", [1, 2], None])
def test_bad_classes(tmp_path, classes):
    meta = {**META, "classes": classes} if classes is not None else {
        k: v for k, v in META.items() if k != "classes"}
    folder = model_dir(tmp_path, meta)
    assert message(read_meta, folder) == (
        f"{folder / 'meta.json'}: 'classes' must list at least two distinct class names")


def test_classes_are_checked_for_the_task_the_reader_expects(tmp_path):
    folder = model_dir(tmp_path, {"classes": ["only"]})              # no "task" key
    assert read_meta(folder).classes == ["only"]                     # task unknown: not checked
    assert message(read_meta, folder, task="sentiment").endswith(model_files.CLASSES_PROBLEM)
    assert read_meta(model_dir(tmp_path, {}), task="charlm").task is None


def test_a_wrong_type_names_the_key(tmp_path):
    folder = model_dir(tmp_path, {**META, "val_metrics": [0.8]})
    assert message(read_meta, folder) == (
        f"{folder / 'meta.json'}: val_metrics = [0.8] is invalid: Input should be a valid "
        "dictionary")


def test_required_keys(tmp_path):
    folder = model_dir(tmp_path, {"classes": ["negative", "positive"]})
    assert message(read_meta, folder, required=("task", "model")) == (
        f"{folder / 'meta.json'}: expected a JSON object with 'task' and 'model' "
        "(docs/CONTRACTS.md)")


def test_extra_keys_are_accepted_and_kept(tmp_path):
    meta = {**META, "added_later": {"any": [1, 2]}, "epochs": 3}
    loaded = read_meta(model_dir(tmp_path, meta), task="sentiment")
    assert loaded.classes == ["negative", "positive"] and loaded.val_metrics == {"accuracy": 0.8}
    assert loaded.as_dict() == meta


def test_the_empty_ensemble_has_no_classes(tmp_path):
    meta = {"task": "sentiment", "model": "ensemble", "members": [], "dataset": "uci"}
    assert read_meta(model_dir(tmp_path, meta), task="sentiment").as_dict() == meta


# ----------------------------------------------------------------------------- champion.json


def test_missing_champion(tmp_path):
    assert message(read_champion, tmp_path, "sentiment") == (
        f"{tmp_path / 'sentiment' / 'champion.json'}: no champion sentiment model (train and "
        "evaluate first: `make repro`, or point --models-dir at a folder that holds one)")


def test_unreadable_champion(tmp_path):
    root = champion_dir(tmp_path, "{", raw=True)
    assert message(read_champion, root, "sentiment").startswith(
        f"{root / 'sentiment' / 'champion.json'}: unreadable (")


@pytest.mark.parametrize("content", [{"model": "../lstm"}, {"model": "a/b"}, {"model": ".hidden"},
                                     {"model": ""}, {"value": 1}, "lstm", [{"model": "lstm"}]])
def test_champion_must_name_a_plain_folder(tmp_path, content):
    root = champion_dir(tmp_path, content)
    assert message(read_champion, root, "sentiment") == (
        f"{root / 'sentiment' / 'champion.json'}: expected {{\"model\": \"<name>\", ...}}, "
        f"got {content!r}")


def test_champion_fields(tmp_path):
    root = champion_dir(tmp_path, {"model": "lstm", "selected_on": "val_f1", "value": 1,
                                   "note": "kept"})
    champion = read_champion(root, "sentiment")
    assert (champion.model, champion.selected_on, champion.value) == ("lstm", "val_f1", 1.0)
    root = champion_dir(tmp_path, {"model": "lstm", "value": "high"})
    assert message(read_champion, root, "sentiment") == (
        f"{root / 'sentiment' / 'champion.json'}: value = 'high' is invalid: Input should be a "
        "valid number")


def test_the_module_does_not_load_tensorflow():
    code = ("import sys, textrnn.model_files; "
            "print(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    assert out == "False"
