"""fetch: mirror or download, one validation, nothing half-written, one clear error."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest
from conftest import ROOT
from fixtures import gutenberg_text, write_uci_zip

from textrnn.data import sources
from textrnn.errors import DataError, UserError
from textrnn.io import atomic_dir


@pytest.fixture
def http_folder(tmp_path):
    """Serve a folder over HTTP on loopback; yields (folder, base_url)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _with_urls(monkeypatch, name, urls):
    """Dataset ``name`` as declared, but downloaded from ``urls`` (a local test server)."""
    import dataclasses

    from textrnn import datasets

    declared = datasets.get_dataset(name)
    monkeypatch.setitem(datasets._DATASETS, name, dataclasses.replace(declared, urls=tuple(urls)))


def test_mirror_copy_is_validated_and_placed(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "pg2000.txt").write_bytes(gutenberg_text().encode("utf-8"))
    out = sources.fetch("quijote", tmp_path / "out", timeout_s=5, retries=0, mirror=str(mirror))
    assert out.read_bytes() == gutenberg_text().encode("utf-8")
    assert [p.name for p in out.parent.iterdir()] == ["pg2000.txt"]


@pytest.mark.parametrize("name,filename", [
    ("quijote", "pg2000.txt"), ("uci", "sentiment_labelled_sentences.zip"),
    ("imdb", "aclImdb_v1.tar.gz"),
])
def test_an_empty_mirror_file_is_named_as_empty_and_nothing_is_written(tmp_path, name, filename):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / filename).write_bytes(b"")
    with pytest.raises(DataError) as info:
        sources.fetch(name, tmp_path / "out", timeout_s=2, retries=0, mirror=str(mirror))
    assert str(info.value) == f"{filename}: the file is empty (0 bytes), from {mirror / filename}"
    assert list((tmp_path / "out").iterdir()) == []


def test_download_is_used_when_the_mirror_lacks_the_file(tmp_path, monkeypatch, http_folder):
    folder, base = http_folder
    write_uci_zip(folder / "uci.zip")
    _with_urls(monkeypatch, "uci", [f"{base}/missing.zip", f"{base}/uci.zip"])
    out = sources.fetch("uci", tmp_path / "out", timeout_s=5, retries=1,
                        mirror=str(tmp_path / "empty-mirror"))
    assert out.name == "sentiment_labelled_sentences.zip"
    assert out.read_bytes() == (folder / "uci.zip").read_bytes()
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_nothing_reachable_is_one_error_naming_every_place(tmp_path, monkeypatch):
    _with_urls(monkeypatch, "quijote", ["http://127.0.0.1:9/pg2000.txt"])
    with pytest.raises(DataError) as info:
        sources.fetch("quijote", tmp_path / "out", timeout_s=2, retries=0,
                      mirror=str(tmp_path / "nowhere"))
    message = str(info.value)
    assert message.startswith("could not fetch pg2000.txt: looked in ")
    assert f"{tmp_path / 'nowhere' / 'pg2000.txt'} (not found; TEXTRNN_DATA_MIRROR=" in message
    assert "http://127.0.0.1:9/pg2000.txt (ConnectionError" in message
    assert list((tmp_path / "out").iterdir()) == []


def test_downloaded_file_with_wrong_content_is_rejected_and_removed(tmp_path, monkeypatch,
                                                                     http_folder):
    folder, base = http_folder
    (folder / "pg2000.txt").write_text("<html>Service unavailable</html>")
    _with_urls(monkeypatch, "quijote", [f"{base}/pg2000.txt"])
    with pytest.raises(DataError, match="pg2000.txt: the .*START OF .* marker is missing"):
        sources.fetch("quijote", tmp_path / "out", timeout_s=5, retries=0, mirror=None)
    assert list((tmp_path / "out").iterdir()) == []


def test_truncated_mirror_file_is_rejected_and_nothing_is_left(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    zipped = write_uci_zip(mirror / "sentiment_labelled_sentences.zip")
    zipped.write_bytes(zipped.read_bytes()[:1000])
    with pytest.raises(DataError, match="sentiment_labelled_sentences.zip: not a readable zip"):
        sources.fetch("uci", tmp_path / "out", timeout_s=5, retries=0, mirror=str(mirror))
    assert list((tmp_path / "out").iterdir()) == []


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(UserError,
                       match="unknown dataset 'mnist'; known datasets: imdb, quijote, uci"):
        sources.get_source("mnist")


def test_atomic_dir_keeps_the_old_folder_when_the_new_one_fails(tmp_path):
    target = tmp_path / "raw"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("half")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_the_readme_names_the_mirror_variable():
    readme = ROOT / "README.md"
    assert f"{sources.MIRROR_ENV}=" in readme.read_text(encoding="utf-8")
