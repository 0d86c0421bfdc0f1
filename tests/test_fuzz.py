"""The parsers under fuzz (hypothesis): any input gives a named fault or a clean one-line error,
never a traceback. YOLO label text, VOC XML (XML bombs and external entities included),
data.yaml, and an edge bundle's metadata.json."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.metadata import MetadataError, check_metadata_doc
from yeo.data.readers import voc, yolo
from yeo.errors import DataError

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)  # files are UTF-8
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "0x1", "1_0", "٣", "", "-0"]),
)
LINE = st.lists(st.one_of(NUMBER, st.text(string.printable, max_size=6)), max_size=7).map(" ".join)


@FUZZ
@given(st.lists(LINE, max_size=8).map("\n".join) | TEXT)
def test_yolo_label_lines_give_boxes_or_named_problems(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        label = Path(tmp) / "a.txt"
        label.write_text(text)
        boxes, problems = yolo.parse_yolo_label(label)
    for b in boxes:
        assert all(map(_finite, (b.cx, b.cy, b.w, b.h)))
    assert all(p.startswith("line ") for p in problems)


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")


def test_yolo_label_nan_and_inf_class_ids_are_named() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        label = Path(tmp) / "a.txt"
        label.write_text("nan 0.5 0.5 0.1 0.1\ninf 0.5 0.5 0.1 0.1\n0 nan 0.5 0.1 0.1\n")
        boxes, problems = yolo.parse_yolo_label(label)
    assert boxes == [] and len(problems) == 3 and "line 3: non-finite" in problems[2]


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(
    TEXT
    | st.dictionaries(
        st.sampled_from(["names", "path", "train", "val", "test", "nc"]), YAML_VALUES, max_size=5
    ).map(json.dumps)  # JSON is YAML: structured documents with wrong types
)
def test_data_yaml_gives_a_dataset_or_a_data_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        (root / "data.yaml").write_text(text)
        try:
            ds = yolo.read_yolo("fuzz", root, None)
        except DataError as e:
            assert "\n" not in str(e) and str(e)
        else:
            assert ds.names and all(isinstance(n, str) for n in ds.names)


VOC_TAGS = st.sampled_from(
    [
        "annotation",
        "filename",
        "size",
        "width",
        "height",
        "object",
        "name",
        "bndbox",
        "xmin",
        "ymin",
        "xmax",
        "ymax",
    ]
)


def _xml(node: object) -> str:
    if isinstance(node, str):
        return node.replace("&", "&amp;").replace("<", "&lt;")
    tag, kids = node  # type: ignore[misc]
    return f"<{tag}>{''.join(_xml(k) for k in kids)}</{tag}>"


XML_TREES = st.recursive(
    NUMBER | st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
    lambda kids: st.tuples(VOC_TAGS, st.lists(kids, max_size=4)),
    max_leaves=12,
)


@FUZZ
@given(XML_TREES.map(_xml) | TEXT)
def test_voc_xml_gives_boxes_or_named_faults(xml: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _jpeg(root / "a.jpg")
        (root / "a.xml").write_text(xml)
        ds = voc.read_voc("fuzz", root, ["cat", "dog"])
    for img in ds.images:
        assert all(_finite(v) for b in img.boxes for v in (b.cx, b.cy, b.w, b.h))
    assert all(f.file.endswith("a.xml") for f in ds.faults)


def _jpeg(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (32, 24), "grey").save(path)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<annotation><filename>a.jpg</filename><object><name>&lol4;</name></object></annotation>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>a.jpg</filename><object><name>&xxe;</name></object></annotation>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL], ids=["billion-laughs", "xxe"])
def test_xml_entities_are_refused_as_a_named_fault(xml: str, tmp_path: Path) -> None:
    _jpeg(tmp_path / "a.jpg")
    (tmp_path / "a.xml").write_text(xml)
    ds = voc.read_voc("evil", tmp_path, ["cat"])
    (fault,) = [f for f in ds.faults if f.file.endswith("a.xml")]
    assert "bad VOC XML" in fault.fault and "entit" in fault.fault.lower()
    assert all(not img.boxes for img in ds.images)


META_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=10,
)
GOOD_META = {
    "name": "m",
    "version": "v1",
    "precision": "int8",
    "classes": {"0": "scratch", "1": "pits"},
    "thresholds": {"conf": 0.25, "iou": 0.7},
    "input": {"shape": [1, 3, 256, 256]},
}


@FUZZ
@given(
    st.dictionaries(st.sampled_from(sorted(GOOD_META)), META_VALUES, max_size=6)
    | st.builds(lambda k, v: GOOD_META | {k: v}, st.sampled_from(sorted(GOOD_META)), META_VALUES)
)
def test_bundle_metadata_gives_named_faults_never_a_traceback(meta: dict) -> None:
    faults = check_metadata_doc(meta)
    assert all(isinstance(f, str) and f.startswith("metadata.json: ") for f in faults)
    if not faults:  # what passes is what the runtime reads without a second check
        assert {int(k) for k in meta["classes"]} == set(range(len(meta["classes"])))
        assert 0 <= meta["thresholds"]["conf"] <= 1


def test_good_metadata_passes_and_a_broken_one_is_named() -> None:
    assert check_metadata_doc(GOOD_META) == []
    bad = GOOD_META | {"classes": {"0": "a", "2": "b"}}
    assert check_metadata_doc(bad) == ["metadata.json: classes ids must be 0..n-1, got [0, 2]"]
    with pytest.raises(MetadataError, match=r"^x/metadata.json: thresholds.conf"):
        MetadataError.check(GOOD_META | {"thresholds": {"conf": 2, "iou": 0.5}}, "x")
