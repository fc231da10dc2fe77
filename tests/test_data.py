"""Tests of the data pipeline on real Oxford-102 files: converter, cache, readers, split, dataset, augment.

Everything runs on the committed fixture (tests/fixtures/oxford102_mini, 306 real images) or on
modified copies of it in tmp_path; only the full-set test reads the full dataset ($OXFORD102_DIR, else data/oxford102).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from data_utils import aelnouby, official
from data_utils.augment import center_crop, random_crop_flip, to_float
from data_utils.cache import SCHEMA_DOC, SCHEMA_VERSION, load_cache, write_cache
from data_utils.dataset import load_data
from data_utils.prepare import prepare
from data_utils.records import DataError, Record, decode_image
from data_utils.split import holdout, split_classes
from data_utils.text import UNK, Vocab, is_junk, tokenize
from core.config import DataConfig

REPO = Path(__file__).resolve().parents[1]
FULL_ROOT = REPO / os.environ.get("OXFORD102_DIR", "data/oxford102")  # where the project looks
ATTR_KEYS = {"schema_version", "schema", "source_kind", "source_fingerprint", "image_size", "n_images",
             "n_captions", "n_classes", "converted_modes", "skipped"}
SEED0_TRAIN = [6, 9, 10, 11, 12, 14, 17, 21, 28, 37, 38, 40, 56, 68, 83, 85, 86, 88, 97, 100]
SEED0_TEST = [20, 23, 24, 35, 102]


# ----------------------------------------------------------------------------------------------- helpers

class Log:
    """Collects prepare()'s log lines."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, msg, *a, **k):
        self.lines.append(str(msg))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def quiet(*a, **k):
    pass


def copy_root(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def labels_of(root: Path) -> np.ndarray:
    return scipy.io.loadmat(str(root / "imagelabels.mat"))["labels"].reshape(-1)


def caption_file(root: Path, name: str) -> Path:
    (path,) = (root / "text_c10").glob(f"class_*/{name}.txt")
    return path


def file_lines(root: Path, name: str) -> list[str]:
    return caption_file(root, name).read_text(encoding="utf-8").splitlines()


def read_h5(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {
            "attrs": dict(f.attrs),
            "images": f["images"][:],
            "labels": f["labels"][:],
            "names": [n.decode() if isinstance(n, bytes) else n for n in f["names"][:]],
            "captions": [[c.decode() if isinstance(c, bytes) else c for c in row] for row in f["captions"][:]],
            "caption_counts": f["caption_counts"][:],
        }


def tmp_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp-*"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- converter on the fixture

def test_fixture_cache_contents(mini_root, mini_cache):
    c = read_h5(mini_cache)
    a = c["attrs"]
    assert c["images"].shape == (306, 72, 72, 3) and c["images"].dtype == np.uint8
    assert len(c["names"]) == 306 and c["names"] == sorted(c["names"])
    assert c["names"] == sorted(p.stem for p in (mini_root / "jpg").glob("image_*.jpg"))
    # labels agree with the real imagelabels.mat
    mat = labels_of(mini_root)
    assert c["labels"].tolist() == [int(mat[int(n.split("_")[1]) - 1]) for n in c["names"]]
    assert len(set(c["labels"].tolist())) == 102 and Counter(c["labels"].tolist()) == {k: 3 for k in range(1, 103)}
    # captions verbatim, 10 per image
    assert c["caption_counts"].tolist() == [10] * 306
    for name, caps in zip(c["names"], c["captions"]):
        assert caps == file_lines(mini_root, name), name
    assert sum(len(x) for x in c["captions"]) == 3060
    # images are the decoded JPEGs, in name order
    for i in (0, 101, 305):
        want, _ = decode_image((mini_root / "jpg" / f"{c['names'][i]}.jpg").read_bytes(), 72, "t")
        assert np.array_equal(c["images"][i], want)
    assert c["images"].std() > 10  # real photographs, not a constant fill
    # attrs
    assert set(a) == ATTR_KEYS
    assert all(k in SCHEMA_DOC for k in ATTR_KEYS)  # every attr is documented in the schema docstring
    assert int(a["schema_version"]) == SCHEMA_VERSION == 1
    assert a["source_kind"] == "official"
    assert a["source_fingerprint"] == official.fingerprint(mini_root)
    assert (int(a["image_size"]), int(a["n_images"]), int(a["n_captions"]), int(a["n_classes"])) == (72, 306, 3060, 102)
    assert json.loads(a["converted_modes"]) == {} and json.loads(a["skipped"]) == []


def test_load_cache_classes(mini_cache):
    d = load_cache(mini_cache, [5, 77])
    assert sorted(set(d.labels.tolist())) == [5, 77] and len(d.names) == 6
    assert d.images.shape == (6, 72, 72, 3) and all(len(c) == 10 for c in d.captions)
    full = load_cache(mini_cache)
    i = full.names.index(d.names[0])
    assert np.array_equal(full.images[i], d.images[0]) and full.captions[i] == d.captions[0]
    with pytest.raises(DataError, match="class"):
        load_cache(mini_cache, [5, 103])


def test_load_cache_rejects_other_schema(mini_cache, tmp_path):
    old = tmp_path / "old.h5"
    shutil.copy(mini_cache, old)
    with h5py.File(old, "r+") as f:
        f.attrs["schema_version"] = 0
    with pytest.raises(DataError, match="schema version 0"):
        load_cache(old)
    with pytest.raises(DataError, match="missing.h5"):
        load_cache(tmp_path / "missing.h5")


# ------------------------------------------------------------------------------------------- idempotence

def test_prepare_idempotent_and_rebuilds_on_change(mini_root, tmp_path):
    root = copy_root(mini_root, tmp_path / "src")
    out = tmp_path / "cache" / "flowers.h5"
    first = prepare(root, out, log=quiet)
    st = out.stat()

    log = Log()
    again = prepare(root, out, log=log)
    st2 = out.stat()
    assert "up to date" in log.text and "building" not in log.text
    assert (st2.st_ino, st2.st_mtime_ns, st2.st_size) == (st.st_ino, st.st_mtime_ns, st.st_size)
    assert again["source_fingerprint"] == first["source_fingerprint"]

    # touching a caption file changes the fingerprint and triggers a rebuild
    cap = caption_file(root, "image_00001")
    fp_before = official.fingerprint(root)
    t = cap.stat().st_mtime_ns + 5_000_000_000
    os.utime(cap, ns=(t, t))
    assert official.fingerprint(root) != fp_before
    log = Log()
    rebuilt = prepare(root, out, log=log)
    assert "building" in log.text and "up to date" not in log.text
    assert out.stat().st_ino != st.st_ino
    assert rebuilt["source_fingerprint"] == official.fingerprint(root) != fp_before

    # changing a caption's text is rebuilt and the new text lands in the cache
    lines = cap.read_text().splitlines()
    lines[0] = "an entirely new caption about a purple flower"
    cap.write_text("\n".join(lines) + "\n")
    t += 5_000_000_000
    os.utime(cap, ns=(t, t))  # make sure the mtime differs even on coarse-grained file systems
    log = Log()
    prepare(root, out, log=log)
    assert "building" in log.text
    c = read_h5(out)
    assert c["captions"][c["names"].index("image_00001")][0] == "an entirely new caption about a purple flower"

    # force=True rebuilds an up-to-date cache
    log = Log()
    prepare(root, out, log=log)
    assert "up to date" in log.text
    ino = out.stat().st_ino
    log = Log()
    prepare(root, out, force=True, log=log)
    assert "building" in log.text and out.stat().st_ino != ino
    assert tmp_leftovers(out.parent) == []


# --------------------------------------------------------------------------------------------- atomicity

def test_failed_rebuild_keeps_old_cache(mini_root, tmp_path):
    root = copy_root(mini_root, tmp_path / "src")
    out = tmp_path / "cache" / "flowers.h5"
    prepare(root, out, log=quiet)
    digest, ino = sha256(out), out.stat().st_ino

    bad = root / "jpg" / "image_00002.jpg"
    bad.write_bytes(b"this is not a JPEG file at all" * 10)
    with pytest.raises(DataError, match="image_00002.jpg"):
        prepare(root, out, log=quiet)
    assert sha256(out) == digest and out.stat().st_ino == ino
    assert len(load_cache(out).names) == 306
    assert tmp_leftovers(out.parent) == []


def test_write_cache_failing_mid_write_leaves_no_temp(mini_root, mini_cache, tmp_path):
    out = tmp_path / "flowers.h5"
    shutil.copy(mini_cache, out)
    digest = sha256(out)
    records = list(official.read_official(mini_root))[:5]
    # a label that does not fit the int16 labels dataset: the images are already written when it fails
    records[3] = Record(records[3].name, 10**6, records[3].captions, records[3].jpeg, records[3].origin)
    with pytest.raises(OverflowError):
        write_cache(out, records, source_kind="official", fingerprint="x", log=quiet)
    assert sha256(out) == digest
    assert tmp_leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["flowers.h5"]


# ----------------------------------------------------------------------------------------------- bad input

def _missing_root(root: Path) -> Path:
    return root / "does_not_exist"


def _no_jpg(root: Path) -> Path:
    shutil.rmtree(root / "jpg")
    return root / "jpg"


def _corrupt_jpeg(root: Path) -> Path:
    p = root / "jpg" / "image_00003.jpg"
    p.write_bytes(bytes(range(256)) * 4)
    return p


def _truncated_jpeg(root: Path) -> Path:
    p = root / "jpg" / "image_00252.jpg"
    p.write_bytes(p.read_bytes()[:2000])
    return p


def _caption_missing(root: Path) -> Path:
    p = caption_file(root, "image_00253")
    p.unlink()
    return p


def _few_captions(root: Path) -> Path:
    p = caption_file(root, "image_00254")
    p.write_text("\n".join(p.read_text().splitlines()[:7]) + "\n")
    return p


def _short_labels(root: Path) -> Path:
    p = root / "imagelabels.mat"
    scipy.io.savemat(str(p), {"labels": labels_of(root)[:5000].reshape(1, -1)})
    return p


def _labels_no_key(root: Path) -> Path:
    p = root / "imagelabels.mat"
    scipy.io.savemat(str(p), {"classes": labels_of(root).reshape(1, -1)})
    return p


BAD_INPUTS = {
    "missing folder": (_missing_root, "no such folder"),
    "missing jpg/": (_no_jpg, "folder missing"),
    "corrupt jpeg": (_corrupt_jpeg, "not a readable image"),
    "truncated jpeg": (_truncated_jpeg, "not a readable image"),
    "caption file missing": (_caption_missing, "caption file missing"),
    "fewer than 10 captions": (_few_captions, "7 caption lines"),
    "labels too short": (_short_labels, "5000 labels"),
    "labels without key": (_labels_no_key, "no 'labels' key"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_the_file(case, mini_root, tmp_path):
    root = copy_root(mini_root, tmp_path / "src")
    damage, what = BAD_INPUTS[case]
    culprit = damage(root)
    source = culprit if case == "missing folder" else root
    out = tmp_path / "out" / "flowers.h5"
    with pytest.raises(DataError) as err:
        prepare(source, out, log=quiet)
    msg = str(err.value)
    assert str(culprit) in msg, msg
    assert what in msg, msg
    assert not out.exists()
    assert not out.parent.exists() or tmp_leftovers(out.parent) == []


def test_skip_bad_skips_and_counts(mini_root, mini_cache, tmp_path):
    root = copy_root(mini_root, tmp_path / "src")
    bad = _corrupt_jpeg(root)
    out = tmp_path / "flowers.h5"
    log = Log()
    attrs = prepare(root, out, skip_bad=True, log=log)
    skipped = json.loads(attrs["skipped"])
    assert len(skipped) == 1 and str(bad) in skipped[0]
    assert "skipping" in log.text and str(bad) in log.text
    c = read_h5(out)
    assert json.loads(c["attrs"]["skipped"]) == skipped
    assert len(c["names"]) == int(c["attrs"]["n_images"]) == 305
    assert "image_00003" not in c["names"] and "image_00002" in c["names"]
    assert int(c["attrs"]["n_captions"]) == 3050
    # the rest is the normal conversion
    full = read_h5(mini_cache)
    keep = [i for i, n in enumerate(full["names"]) if n != "image_00003"]
    assert np.array_equal(c["images"], full["images"][keep])
    assert c["labels"].tolist() == full["labels"][keep].tolist()


def test_grayscale_and_cmyk_converted_to_rgb(mini_root, mini_cache, tmp_path):
    root = copy_root(mini_root, tmp_path / "src")
    for name, mode in (("image_00001", "L"), ("image_00002", "CMYK")):
        p = root / "jpg" / f"{name}.jpg"
        img = Image.open(p).convert(mode)
        img.save(p, "JPEG", quality=95)
        assert Image.open(p).mode == mode
    out = tmp_path / "flowers.h5"
    attrs = prepare(root, out, log=quiet)
    assert json.loads(attrs["converted_modes"]) == {"L": 1, "CMYK": 1}
    c = read_h5(out)
    assert c["images"].shape == (306, 72, 72, 3)
    gray = c["images"][c["names"].index("image_00001")]
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    ref = read_h5(mini_cache)
    i = ref["names"].index("image_00002")
    assert not np.array_equal(ref["images"][i][..., 0], ref["images"][i][..., 1])  # the original is in colour
    cmyk = c["images"][i].astype(int)
    assert np.abs(cmyk - ref["images"][i].astype(int)).mean() < 12  # CMYK round trip keeps the colours
    assert not np.array_equal(cmyk[..., 0], cmyk[..., 1])


def test_unknown_words_are_the_ones_encoded_as_unk():
    vocab = Vocab.build(["a red flower", "a red rose", "a white flower"])  # min_count 2: a, red, flower
    caption = "A RED tulip, a red Tulip and a dahlia"
    assert vocab.unknown_words(caption) == ["tulip", "and", "dahlia"]  # each once, in order, lower-cased
    tokens, lengths = vocab.encode([caption], max_len=16)
    ids = tokens[0, :int(lengths[0])].tolist()
    assert [w for w, i in zip(tokenize(caption), ids) if i == UNK] == ["tulip", "tulip", "and", "dahlia"]
    assert vocab.unknown_words("a red flower") == []


# -------------------------------------------------------------------------------------------- junk captions

def test_junk_captions(mini_root, tmp_path):
    train_classes, _ = split_classes(0)
    labels = labels_of(mini_root)
    root = copy_root(mini_root, tmp_path / "src")
    # three train-class images: slot 0 -> "{}", slot 3 -> "v" (so "v" is seen >= min_word_count times)
    names = sorted(p.stem for p in (root / "jpg").glob("image_*.jpg")
                   if labels[int(p.stem.split("_")[1]) - 1] in train_classes)[:3]
    for name in names:
        p = caption_file(root, name)
        lines = p.read_text().splitlines()
        lines[0], lines[3] = "{}", "v"
        p.write_text("\n".join(lines) + "\n")
    out = tmp_path / "flowers.h5"
    prepare(root, out, log=quiet)
    c = read_h5(out)
    for name in names:
        caps = c["captions"][c["names"].index(name)]
        assert caps == file_lines(root, name) and caps[0] == "{}" and caps[3] == "v"
    assert is_junk("{}") and is_junk("v") and not is_junk("a red flower")

    data = load_data(DataConfig(cache=str(out)))
    # "v" is seen often enough in the training captions that it would be a word if junk were counted
    assert sum(caps.count("v") for caps in data.train.captions) >= 2
    assert "v" not in data.vocab.stoi and "{}" not in data.vocab.stoi
    assert Vocab.build(["v", "v", "v", "red v", "red v"]).itos == ["<pad>", "<unk>", "red", "v"]  # control
    allset = data.all_images()
    for name in names:
        i = allset.names.index(name)
        lens = allset.lengths[i].tolist()
        assert lens[0] == 0 and lens[3] == 0
        assert all(n > 0 for j, n in enumerate(lens) if j not in (0, 3))
    i = allset.names.index(names[0])
    idx = torch.full((4000,), i, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    tokens, lengths, slots = allset.sample_captions(idx, generator=g)
    assert set(slots.tolist()) == {1, 2, 4, 5, 6, 7, 8, 9}
    assert (lengths > 0).all()
    assert torch.equal(tokens, allset.tokens[i, slots])


# --------------------------------------------------------------------------------------- aelnouby format

def write_aelnouby_h5(path: Path, root: Path, splits: dict[str, list[str]], seed: int = 0,
                      drop: dict[str, str] | None = None) -> dict[str, list[str]]:
    """A `flowers.hdf5` in the base repo's layout; returns name -> expected distinct captions.

    `drop` maps an entry key ("train/image_00001_2") to a field name to leave out of that entry.
    """
    rng = np.random.default_rng(seed)
    labels = labels_of(root)
    drop = drop or {}
    expected: dict[str, list[str]] = {}
    with h5py.File(path, "w") as f:
        for split, names in splits.items():
            g = f.create_group(split)
            for name in names:
                label = int(labels[int(name.split("_")[1]) - 1])
                lines = file_lines(root, name)
                picks = rng.choice(len(lines), 5, replace=True)  # the base converter drew with replacement
                jpeg = (root / "jpg" / f"{name}.jpg").read_bytes()
                for c, k in enumerate(picks):
                    key = f"{name}_{c}"
                    fields = {
                        "name": lambda ex: ex.create_dataset("name", data=name),
                        "img": lambda ex: ex.create_dataset("img", data=np.void(jpeg)),
                        "embeddings": lambda ex: ex.create_dataset(
                            "embeddings", data=rng.standard_normal(1024).astype(np.float32)),
                        "class": lambda ex: ex.create_dataset("class", data=f"class_{label:05d}"),
                        "txt": lambda ex: ex.create_dataset("txt", data=lines[k],
                                                            dtype=h5py.special_dtype(vlen=str)),
                    }
                    ex = g.create_group(key)
                    for field, make in fields.items():
                        if drop.get(f"{split}/{key}") != field:
                            make(ex)
                expected[name] = list(dict.fromkeys(lines[k] for k in picks))
    return expected


def _pick_names(root: Path) -> dict[str, list[str]]:
    have = sorted(p.stem for p in (root / "jpg").glob("image_*.jpg"))
    # spread over the sorted names so several classes and splits are covered
    chosen = have[::34][:9]
    return {"train": chosen[0:4], "valid": chosen[4:6], "test": chosen[6:9]}


def test_aelnouby_reader_matches_official(mini_root, mini_cache, tmp_path):
    splits = _pick_names(mini_root)
    src = tmp_path / "flowers.hdf5"
    expected = write_aelnouby_h5(src, mini_root, splits)
    assert any(len(v) < 5 for v in expected.values())  # duplicates really are present
    out = tmp_path / "cache.h5"
    attrs = prepare(src, out, log=quiet)
    assert attrs["source_kind"] == "aelnouby" and attrs["source_fingerprint"] == aelnouby.fingerprint(src)

    c = read_h5(out)
    names = sorted(expected)
    assert c["names"] == names
    assert c["caption_counts"].tolist() == [len(expected[n]) for n in names]
    assert c["captions"] == [expected[n] + [""] * (len(c["captions"][0]) - len(expected[n])) for n in names]
    assert int(attrs["n_captions"]) == sum(len(v) for v in expected.values())
    assert int(attrs["n_images"]) == 9
    ref = read_h5(mini_cache)
    idx = [ref["names"].index(n) for n in names]
    assert c["labels"].tolist() == ref["labels"][idx].tolist()
    assert int(attrs["n_classes"]) == len(set(ref["labels"][idx].tolist()))
    assert np.array_equal(c["images"], ref["images"][idx])  # pixel-equal to the official conversion
    loaded = load_cache(out)
    assert loaded.captions == [expected[n] for n in names]

    # idempotent for this source kind too
    log = Log()
    prepare(src, out, log=log)
    assert "up to date" in log.text


def test_aelnouby_missing_field_names_file_and_entry(mini_root, tmp_path):
    splits = _pick_names(mini_root)
    src = tmp_path / "flowers.hdf5"
    key = f"valid/{splits['valid'][1]}_2"
    write_aelnouby_h5(src, mini_root, splits, drop={key: "img"})
    with pytest.raises(DataError) as err:
        prepare(src, tmp_path / "cache.h5", log=quiet)
    msg = str(err.value)
    assert str(src) in msg and key in msg and "img" in msg, msg
    assert not (tmp_path / "cache.h5").exists()


def test_aelnouby_embeddings_never_needed(mini_root, tmp_path):
    splits = _pick_names(mini_root)
    src = tmp_path / "flowers.hdf5"
    drop = {f"train/{splits['train'][0]}_{c}": "embeddings" for c in range(5)}
    drop[f"test/{splits['test'][2]}_4"] = "embeddings"
    expected = write_aelnouby_h5(src, mini_root, splits, drop=drop)
    with h5py.File(src, "r") as f:
        assert "embeddings" not in f[f"train/{splits['train'][0]}_0"]
        assert "embeddings" in f[f"train/{splits['train'][1]}_0"]
    attrs = prepare(src, tmp_path / "cache.h5", log=quiet)
    assert int(attrs["n_images"]) == 9
    assert load_cache(tmp_path / "cache.h5").names == sorted(expected)


def test_aelnouby_bad_file(tmp_path):
    bogus = tmp_path / "flowers.hdf5"
    bogus.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5"):
        prepare(bogus, tmp_path / "c.h5", log=quiet)
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("other")
    with pytest.raises(DataError, match="none of the groups"):
        prepare(tmp_path / "empty.hdf5", tmp_path / "c.h5", log=quiet)


# ------------------------------------------------------------------------------------------------- split

def test_split_classes():
    tr, te = split_classes(0)
    assert (tr, te) == (SEED0_TRAIN, SEED0_TEST)
    for seed in range(6):
        tr, te = split_classes(seed)
        assert len(tr) == 20 and len(te) == 5 and not set(tr) & set(te)
        assert all(1 <= c <= 102 for c in tr + te)
        assert tr == sorted(tr) and te == sorted(te)
        assert split_classes(seed) == (tr, te)
    assert len({tuple(split_classes(s)[0]) for s in range(6)}) == 6
    assert len({tuple(split_classes(s)[1]) for s in range(6)}) == 6
    with pytest.raises(ValueError):
        split_classes(0, 100, 5)


def test_holdout():
    labels = np.repeat(np.arange(1, 6), [10, 20, 3, 2, 7])
    tr, va = holdout(labels, 0.2, seed=0)
    assert not set(tr.tolist()) & set(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(len(labels)))
    assert tr.tolist() == sorted(tr.tolist()) and va.tolist() == sorted(va.tolist())
    per_class = Counter(labels[va].tolist())
    assert per_class == {1: 2, 2: 4, 3: 1, 4: 1, 5: 1}  # round(0.2 n), at least 1, never the whole class
    assert all(Counter(labels[tr].tolist())[c] >= 1 for c in range(1, 6))
    tr2, va2 = holdout(labels, 0.2, seed=0)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert any(not np.array_equal(va, holdout(labels, 0.2, seed=s)[1]) for s in range(1, 4))
    tr0, va0 = holdout(labels, 0.0, seed=0)
    assert len(va0) == 0 and tr0.tolist() == list(range(len(labels)))


# ------------------------------------------------------------------------------------------- load_data

def test_load_data_split_and_vocab(mini_cache):
    cfg = DataConfig(cache=str(mini_cache))
    data = load_data(cfg)
    assert (data.train_classes, data.test_classes) == (SEED0_TRAIN, SEED0_TEST)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 20, 15)
    seen = set(data.train.labels.tolist()) | set(data.val.labels.tolist())
    assert seen == set(SEED0_TRAIN)
    assert set(data.test.labels.tolist()) == set(SEED0_TEST)
    assert not (set(data.train.names) | set(data.val.names)) & set(data.test.names)
    assert not set(data.train.names) & set(data.val.names)
    assert data.train.images.shape == (40, 3, 72, 72) and data.train.images.dtype == torch.uint8
    assert data.train.tokens.shape == (40, 10, cfg.max_caption_len)

    # "polka" occurs 3 times in the test classes' captions of the fixture and never in a train class
    test_words = Counter(w for caps in data.test.captions for c in caps for w in tokenize(c))
    train_words = Counter(w for s in (data.train, data.val) for caps in s.captions for c in caps for w in tokenize(c))
    assert test_words["polka"] >= cfg.min_word_count and train_words["polka"] == 0
    assert "polka" not in data.vocab.stoi
    toks, lens = data.vocab.encode(["white petals with polka dots"], 8)
    assert toks[0, 3].item() == UNK and toks[0, 0].item() == data.vocab.stoi["white"]
    i, j = next((i, j) for i, caps in enumerate(data.test.captions) for j, c in enumerate(caps) if "polka" in c)
    assert UNK in data.test.tokens[i, j, : data.test.lengths[i, j]].tolist()
    # the vocabulary is exactly the one of the training split's captions
    assert data.vocab.itos == Vocab.build([c for caps in data.train.captions for c in caps], cfg.min_word_count).itos
    assert len(data.vocab) > 50

    again = load_data(cfg)
    assert again.vocab.itos == data.vocab.itos
    assert again.train.names == data.train.names and torch.equal(again.train.tokens, data.train.tokens)
    assert again.val.names == data.val.names
    other = load_data(DataConfig(cache=str(mini_cache), seed=1))
    assert other.test_classes != data.test_classes


# --------------------------------------------------------------------------------------------- augment

def test_random_crop_flip_matches_manual_slicing():
    g0 = torch.Generator().manual_seed(123)
    x = torch.randint(0, 256, (16, 3, 72, 72), dtype=torch.uint8, generator=g0)
    out = random_crop_flip(x, 64, generator=torch.Generator().manual_seed(7))
    assert out.shape == (16, 3, 64, 64) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1

    g = torch.Generator().manual_seed(7)  # replay the same draws
    oy = torch.randint(0, 9, (16,), generator=g)
    ox = torch.randint(0, 9, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    assert flip.any() and (~flip).any() and (oy != 4).any() and (ox != 4).any()
    for i in range(16):
        crop = x[i, :, oy[i]:oy[i] + 64, ox[i]:ox[i] + 64]
        if flip[i]:
            crop = crop.flip(-1)
        assert torch.equal(out[i], to_float(crop[None])[0]), i
    i = int(torch.nonzero(flip)[0])
    plain = to_float(x[i:i + 1, :, oy[i]:oy[i] + 64, ox[i]:ox[i] + 64])[0]
    assert not torch.equal(out[i], plain)  # flipped images really are mirrored
    # a different seed gives different crops
    assert not torch.equal(out, random_crop_flip(x, 64, generator=torch.Generator().manual_seed(8)))


def test_center_crop_and_range(mini_cache):
    x = torch.from_numpy(load_cache(mini_cache, [1]).images).permute(0, 3, 1, 2).contiguous()
    c = center_crop(x, 64)
    assert c.shape == (3, 3, 64, 64) and torch.equal(c, x[:, :, 4:68, 4:68])
    assert torch.equal(center_crop(x, 72), x)
    f = to_float(x)
    assert f.min() >= -1 and f.max() <= 1 and f.min() < -0.5 and f.max() > 0.5
    assert torch.equal(to_float(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([-1.0, 1.0]))
    same = random_crop_flip(x, 72, generator=torch.Generator().manual_seed(0))  # full-size crop: only flips
    for i in range(3):
        assert torch.equal(same[i], f[i]) or torch.equal(same[i], f[i].flip(-1))


def test_random_resized_crop_flip_whole_image_is_a_resize_and_small_crops_zoom_in():
    from data_utils.augment import random_resized_crop_flip
    x = torch.randint(0, 256, (6, 3, 72, 72), dtype=torch.uint8)
    out = random_resized_crop_flip(x, 64, 0.35, generator=torch.Generator().manual_seed(0))
    assert out.shape == (6, 3, 64, 64) and out.dtype == torch.float32 and out.min() >= -1 and out.max() <= 1
    whole = random_resized_crop_flip(x, 64, 1.0, ratio=(1, 1), generator=torch.Generator().manual_seed(1))
    resized = torch.nn.functional.interpolate(to_float(x), size=(64, 64), mode="bilinear", align_corners=False)
    flips = 0
    for i in range(6):  # the whole image, resized, possibly mirrored
        same, mirror = torch.allclose(whole[i], resized[i], atol=1e-5), torch.allclose(whole[i], resized[i].flip(-1),
                                                                                       atol=1e-5)
        assert same or mirror
        flips += mirror and not same
    assert 0 < flips < 6
    zoomed = [not (torch.allclose(out[i], resized[i], atol=1e-3) or torch.allclose(out[i], resized[i].flip(-1),
                                                                                  atol=1e-3)) for i in range(6)]
    assert all(zoomed)  # crops of 35-100 % of the area: other pixels than the whole image's resize


# ----------------------------------------------------------------------------------------------- full data

@pytest.mark.skipif(not (FULL_ROOT / "jpg").is_dir(),
                    reason="full Oxford-102 data not found ($OXFORD102_DIR, else data/oxford102)")
def test_full_dataset_cache(tmp_path):
    out = tmp_path / "flowers.h5"
    attrs = prepare(FULL_ROOT, out, log=quiet)
    assert (int(attrs["n_images"]), int(attrs["n_captions"]), int(attrs["n_classes"])) == (8189, 81890, 102)
    assert json.loads(attrs["skipped"]) == []
    with h5py.File(out, "r") as f:
        assert f["images"].shape == (8189, 72, 72, 3)
        assert sorted(set(f["labels"][:].tolist())) == list(range(1, 103))
        assert (f["caption_counts"][:] == 10).all()
