"""A local copy of the Hub's GLUE/SuperGLUE repositories (``nyu-mll/glue``, ``aps/super_glue``), built from the
original files, so the Hub loading path (``datasets.load_dataset(<repo>, <config>, split=...)``) runs offline.

Where the layout facts come from:

* ``nyu-mll/glue`` has no loading script since its "Convert dataset to Parquet" commits (2024, Hub history of
  the repository): one folder per config holding ``<split>-00000-of-00001.parquet``, and a ``README.md`` whose
  YAML lists ``configs`` (``data_files`` per split, ``<config>/<split>-*``) and ``dataset_info`` (the features).
  ``datasets`` 4+ no longer runs loading scripts, so this Parquet layout is what ``load_dataset`` reads. The
  SuperGLUE repository (``aps/super_glue``, which lm-evaluation-harness loads since 2026) is assumed to have
  the same layout; its tree could not be inspected offline.
* Features per config, from the dataset cards' ``dataset_info``: text fields as strings, ``idx`` int32 (0-based
  row number of the split; SuperGLUE: the file's own ``idx``), ``label`` a ClassLabel with the card's names in
  card order (STS-B: float32), test labels -1 (for MRPC's test split, whose MSR source file has labels, the
  -1 is this helper's assumption).
* Rows are converted here on their own (``csv`` with quoting off, ``json``), not through ``suites.readers``, so a
  test comparing both sources compares two independent conversions. MRPC is built as the GLUE data is defined:
  train and validation from ``msr_paraphrase_train.txt`` split by ``dev_ids.tsv``, test from
  ``msr_paraphrase_test.txt``. ``wsc.fixed`` applies the card's span-text repairs (first letter's case as the
  word at the index, trailing "." dropped, newline to space) to spans that are not substrings of the text.

Only configs whose files exist under the data folder are written, and only the splits present (QNLI and BoolQ
have no train file here); nothing is written into the repository (tests build it under ``tmp_path``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GLUE_REPO = "nyu-mll/glue"
SUPERGLUE_REPO = "aps/super_glue"


@dataclass(frozen=True)
class HubConfig:
    """One Hub config: its repository, features (name -> dtype or ClassLabel names) and how rows are read."""

    repo: str
    name: str
    features: dict[str, Any]  # "string" | "int32" | "float32" | tuple of ClassLabel names
    splits: dict[str, Callable[[Path], Iterator[dict[str, Any]]]]  # split -> rows (data dir -> iterator)
    needs: dict[str, str]  # split -> file (relative to the data dir) that must exist


def _tsv(path: Path, header: bool = True) -> Iterator[dict[str, str] | list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        names = next(reader) if header else None
        for fields in reader:
            if fields:
                yield dict(zip(names, fields, strict=False)) if names else fields


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            yield json.loads(line)


def _label(value: Any, names: tuple[str, ...]) -> int:
    if isinstance(value, bool):
        return int(value)
    return names.index(value) if isinstance(value, str) and value in names else int(value)


def _glue(
    name: str, folder: str, fields: dict[str, str], names, label: str, files: dict[str, str]
) -> HubConfig:
    """A GLUE config read from ``glue/<folder>/<file>`` (header line); ``fields`` maps Hub field -> TSV column."""
    features = {**{f: "string" for f in fields}, "label": names if names else "float32", "idx": "int32"}

    def reader(file: str, split: str):
        def rows(data_dir: Path) -> Iterator[dict[str, Any]]:
            path = data_dir / "glue" / folder / file
            for n, row in enumerate(_tsv(path)):
                out = {f: row[c] for f, c in fields.items()}
                if split == "test":
                    value = -1 if names else -1.0
                elif names:
                    value = _label(row[label], names)
                else:
                    value = float(row[label])
                yield {**out, "label": value, "idx": n}

        return rows

    splits = {split: reader(file, split) for split, file in files.items()}
    return HubConfig(GLUE_REPO, name, features, splits, {s: f"glue/{folder}/{f}" for s, f in files.items()})


def _cola() -> HubConfig:
    names = ("unacceptable", "acceptable")
    features = {"sentence": "string", "label": names, "idx": "int32"}

    def labelled(file: str):
        def rows(data_dir: Path):
            for n, f in enumerate(_tsv(data_dir / "glue/CoLA" / file, header=False)):
                yield {"sentence": f[3], "label": int(f[1]), "idx": n}

        return rows

    def test(data_dir: Path):
        for n, row in enumerate(_tsv(data_dir / "glue/CoLA/test.tsv")):
            yield {"sentence": row["sentence"], "label": -1, "idx": n}

    files = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
    splits = {"train": labelled("train.tsv"), "validation": labelled("dev.tsv"), "test": test}
    return HubConfig(GLUE_REPO, "cola", features, splits, {s: f"glue/CoLA/{f}" for s, f in files.items()})


def _mrpc() -> HubConfig:
    names = ("not_equivalent", "equivalent")
    features = {"sentence1": "string", "sentence2": "string", "label": names, "idx": "int32"}
    folder = "glue/MRPC"

    def from_msr(keep_dev: bool):
        def rows(data_dir: Path):
            dev = {tuple(r[:2]) for r in _tsv(data_dir / folder / "dev_ids.tsv", header=False)}
            kept = (r for r in _tsv(data_dir / folder / "msr_paraphrase_train.txt"))
            kept = (r for r in kept if ((r["#1 ID"], r["#2 ID"]) in dev) == keep_dev)
            for n, r in enumerate(kept):
                yield {
                    "sentence1": r["#1 String"],
                    "sentence2": r["#2 String"],
                    "label": int(r["Quality"]),
                    "idx": n,
                }

        return rows

    def test(data_dir: Path):
        for n, r in enumerate(_tsv(data_dir / folder / "msr_paraphrase_test.txt")):
            yield {"sentence1": r["#1 String"], "sentence2": r["#2 String"], "label": -1, "idx": n}

    needs = {
        "train": f"{folder}/msr_paraphrase_train.txt",
        "validation": f"{folder}/dev_ids.tsv",
        "test": f"{folder}/msr_paraphrase_test.txt",
    }
    return HubConfig(
        GLUE_REPO,
        "mrpc",
        features,
        {"train": from_msr(False), "validation": from_msr(True), "test": test},
        needs,
    )


def _superglue(name: str, folder: str, fields: tuple[str, ...], names, fix=None) -> HubConfig:
    """A SuperGLUE config from ``superglue/<folder>/{train,val,test}.jsonl``; ``idx`` is the file's own."""
    features = {
        **{
            f: ("int32" if f.startswith(("start", "end", "span1_index", "span2_index")) else "string")
            for f in fields
        }
    }
    features.update({"idx": "int32", "label": names})
    files = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}

    def reader(file: str, split: str):
        def rows(data_dir: Path):
            for obj in _jsonl(data_dir / "superglue" / folder / file):
                if "target" in obj:  # WSC: the span fields are nested under "target" in the original files
                    obj = {**obj, **obj["target"]}
                row = {f: obj[f] for f in fields}
                if fix is not None:
                    fix(row)
                label = -1 if split == "test" else _label(obj["label"], names)
                yield {**row, "idx": obj["idx"], "label": label}

        return rows

    splits = {split: reader(file, split) for split, file in files.items()}
    return HubConfig(
        SUPERGLUE_REPO, name, features, splits, {s: f"superglue/{folder}/{f}" for s, f in files.items()}
    )


def _wsc_fixed_spans(row: dict[str, Any]) -> None:
    """The card's ``wsc.fixed`` repairs of span texts that are not substrings of the text (module docstring)."""
    for key in ("span1", "span2"):
        span, index = row[f"{key}_text"], row[f"{key}_index"]
        if span in row["text"]:
            continue
        words = row["text"].split()
        if index < len(words) and span:
            first = words[index][0]
            span = (span[0].lower() if first.islower() else span[0].upper()) + span[1:]
        row[f"{key}_text"] = span.rstrip(".").replace("\n", " ")


BINARY = ("False", "True")


def hub_configs() -> list[HubConfig]:
    """Every config this helper can build (those of the tasks the suites register)."""
    nli = ("entailment", "not_entailment")
    return [
        _cola(),
        _glue(
            "sst2",
            "SST-2",
            {"sentence": "sentence"},
            ("negative", "positive"),
            "label",
            {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        ),
        _mrpc(),
        _glue(
            "stsb",
            "STS-B",
            {"sentence1": "sentence1", "sentence2": "sentence2"},
            None,
            "score",
            {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        ),
        _glue(
            "qnli",
            "QNLI",
            {"question": "question", "sentence": "sentence"},
            nli,
            "label",
            {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        ),
        _glue(
            "rte",
            "RTE",
            {"sentence1": "sentence1", "sentence2": "sentence2"},
            nli,
            "label",
            {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        ),
        _superglue("boolq", "BoolQ", ("question", "passage"), BINARY),
        _superglue("cb", "CB", ("premise", "hypothesis"), ("entailment", "contradiction", "neutral")),
        _superglue(
            "wic", "WiC", ("word", "sentence1", "sentence2", "start1", "start2", "end1", "end2"), BINARY
        ),
        _superglue(
            "wsc.fixed",
            "WSC",
            ("text", "span1_index", "span2_index", "span1_text", "span2_text"),
            BINARY,
            fix=_wsc_fixed_spans,
        ),
    ]


def _features(spec: dict[str, Any]):
    import datasets

    out = {}
    for name, kind in spec.items():
        out[name] = datasets.ClassLabel(names=list(kind)) if isinstance(kind, tuple) else datasets.Value(kind)
    return datasets.Features(out)


def build_hub_layout(data_dir: Path, root: Path) -> dict[str, Path]:
    """Write ``root/<repo>/`` for both repositories from the original files; return ``{repo: folder}``.

    Each config present gets ``<config>/<split>-00000-of-00001.parquet`` (written by ``datasets``, so the file
    carries the features, ClassLabel names included) and an entry in the repository's ``README.md`` YAML.
    """
    import datasets
    import yaml

    cards: dict[str, dict[str, list]] = {GLUE_REPO: {"configs": [], "dataset_info": []}}
    cards[SUPERGLUE_REPO] = {"configs": [], "dataset_info": []}
    for config in hub_configs():
        present = [s for s in config.splits if (data_dir / config.needs[s]).is_file()]
        if not present:
            continue
        folder = root / config.repo / config.name
        folder.mkdir(parents=True, exist_ok=True)
        features = _features(config.features)
        files, infos = [], []
        for split in present:
            rows = list(config.splits[split](data_dir))
            dataset = datasets.Dataset.from_list(rows, features=features)
            dataset.to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
            files.append({"split": split, "path": f"{config.name}/{split}-*"})
            infos.append({"name": split, "num_bytes": dataset.data.nbytes, "num_examples": len(rows)})
        cards[config.repo]["configs"].append({"config_name": config.name, "data_files": files})
        info = {"config_name": config.name, "features": features._to_yaml_list(), "splits": infos}
        cards[config.repo]["dataset_info"].append(info)
    out = {}
    for repo, card in cards.items():
        (root / repo).mkdir(parents=True, exist_ok=True)
        text = "---\n" + yaml.safe_dump(card, sort_keys=False) + "---\n"
        (root / repo / "README.md").write_text(text, encoding="utf-8")
        out[repo] = root / repo
    return out
