"""NanoString nCounter RCC files: one lane (sample) per file, read as tables.

An RCC file (format versions 1.7 and 2.0, as the nCounter Digital Analyzer writes them) is a
text file of tagged blocks::

    <Header>            FileVersion, SoftwareVersion
    <Sample_Attributes> ID, Owner, Comments, Date, GeneRLF, SystemAPF
    <Lane_Attributes>   ID, FovCount, FovCounted, ScannerID, StagePosition, BindingDensity,
                        CartridgeID, CartridgeBarcode
    <Code_Summary>      CodeClass,Name,Accession,Count   (one line per probe)
    <Messages>

Sources: a folder of ``*.RCC`` files, a list of paths, or GEO's ``GSEnnn_RAW.tar`` whose
members (``*.RCC`` or ``*.RCC.gz``) are read in memory: nothing is extracted to disk, member
paths are reduced to their base name and never used as file names, so an archive cannot write
anywhere. Every error names the file (``archive.tar:member`` inside a tar), the line and what
was expected; nothing is skipped or repaired silently.

Pure functions returning DataFrames: :func:`read_rcc_set` gives counts (probes x samples),
the probe table (Name, CodeClass, Accession) and the per-lane attributes (samples x fields).
"""

from __future__ import annotations

import gzip
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_BLOCKS = ("Header", "Sample_Attributes", "Lane_Attributes", "Code_Summary")
CODE_SUMMARY_COLUMNS = ["CodeClass", "Name", "Accession", "Count"]
# The code classes of a gene-expression panel; ERCC spike-ins are Positive (POS_A..POS_F,
# 128 .. 0.125 fM) and Negative (NEG_A..NEG_H, no target).
ENDOGENOUS, HOUSEKEEPING, NEGATIVE, POSITIVE = "Endogenous", "Housekeeping", "Negative", "Positive"
CODE_CLASSES = (ENDOGENOUS, HOUSEKEEPING, NEGATIVE, POSITIVE)
# Lane attributes read as numbers (the others stay text)
NUMERIC_LANE = ("FovCount", "FovCounted", "StagePosition", "BindingDensity")
RCC_SUFFIX = re.compile(r"\.rcc(\.gz)?$", re.IGNORECASE)
_TAG = re.compile(r"^<(/?)([A-Za-z_]+)>$")


class RccError(ValueError):
    """A malformed RCC file or a set of files that do not fit together."""


@dataclass
class RccFile:
    sample: str  # file name without .RCC(.gz)
    source: str  # where it was read from (path, or archive:member)
    header: dict
    sample_attributes: dict
    lane_attributes: dict
    code_summary: pd.DataFrame  # CodeClass, Name, Accession, Count (int64), file order


@dataclass
class RccSet:
    counts: pd.DataFrame  # probes (Name) x samples, int64, probe order of the first file
    probes: pd.DataFrame  # index Name: CodeClass, Accession
    lanes: pd.DataFrame  # index sample: source, header, sample and lane attributes
    sources: dict  # sample -> source


def sample_name(filename: str) -> str:
    """The sample id of an RCC file: its base name without ``.RCC`` / ``.RCC.gz``."""
    return RCC_SUFFIX.sub("", os.path.basename(filename))


def is_rcc_name(filename: str) -> bool:
    return bool(RCC_SUFFIX.search(filename))


def _key_values(lines: list[tuple[int, str]], block: str, source: str) -> dict:
    out: dict = {}
    for lineno, line in lines:
        key, sep, value = line.partition(",")
        if not sep:
            raise RccError(
                f"{source}, line {lineno}: <{block}> line {line!r} is not 'key,value'"
            )
        key = key.strip()
        if key in out:
            raise RccError(f"{source}, line {lineno}: <{block}> key {key!r} given twice")
        out[key] = value.strip()
    return out


def parse_rcc(text: str, source: str) -> RccFile:
    """Parse one RCC file's text; ``source`` names it in errors."""
    blocks: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    opened_at = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        tag = _TAG.match(line)
        if tag:
            closing, name = tag.group(1) == "/", tag.group(2)
            if not closing:
                if current is not None:
                    raise RccError(
                        f"{source}, line {lineno}: <{name}> opens inside <{current}> "
                        f"(opened on line {opened_at}); expected </{current}> first"
                    )
                if name in blocks:
                    raise RccError(f"{source}, line {lineno}: block <{name}> appears twice")
                current, opened_at = name, lineno
                blocks[name] = []
            else:
                if current != name:
                    raise RccError(
                        f"{source}, line {lineno}: </{name}> closes a block that is not open "
                        f"(open: {'<' + current + '>' if current else 'none'})"
                    )
                current = None
            continue
        if current is None:
            raise RccError(f"{source}, line {lineno}: text outside any <block>: {line[:60]!r}")
        blocks[current].append((lineno, line))
    if current is not None:
        raise RccError(f"{source}: block <{current}> (line {opened_at}) is never closed")
    missing = [b for b in REQUIRED_BLOCKS if b not in blocks]
    if missing:
        raise RccError(
            f"{source}: missing block(s) {', '.join('<' + b + '>' for b in missing)}; an RCC "
            f"file has {', '.join('<' + b + '>' for b in REQUIRED_BLOCKS)}"
        )
    return RccFile(
        sample=sample_name(source.rsplit(":", 1)[-1]),
        source=source,
        header=_key_values(blocks["Header"], "Header", source),
        sample_attributes=_key_values(blocks["Sample_Attributes"], "Sample_Attributes", source),
        lane_attributes=_key_values(blocks["Lane_Attributes"], "Lane_Attributes", source),
        code_summary=_code_summary(blocks["Code_Summary"], source),
    )


def _code_summary(lines: list[tuple[int, str]], source: str) -> pd.DataFrame:
    if not lines:
        raise RccError(f"{source}: <Code_Summary> is empty; expected a header line and probes")
    lineno0, head = lines[0]
    cols = [c.strip() for c in head.split(",")]
    if cols != CODE_SUMMARY_COLUMNS:
        raise RccError(
            f"{source}, line {lineno0}: <Code_Summary> header {cols}; expected {CODE_SUMMARY_COLUMNS}"
        )
    rows, linenos = [], []
    for lineno, line in lines[1:]:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise RccError(
                f"{source}, line {lineno}: <Code_Summary> row has {len(parts)} fields; expected 4 "
                f"({','.join(CODE_SUMMARY_COLUMNS)})"
            )
        rows.append(parts)
        linenos.append(lineno)
    if not rows:
        raise RccError(f"{source}: <Code_Summary> has a header but no probe")
    df = pd.DataFrame(rows, columns=CODE_SUMMARY_COLUMNS)
    ok = df["Count"].str.fullmatch(r"\d+")
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy())[0])
        raise RccError(
            f"{source}, line {linenos[i]}: count {df['Count'].iloc[i]!r} of probe "
            f"{df['Name'].iloc[i]!r} is not a non-negative integer"
        )
    df["Count"] = df["Count"].astype(np.int64)
    unknown = ~df["CodeClass"].isin(CODE_CLASSES)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise RccError(
            f"{source}, line {linenos[i]}: CodeClass {df['CodeClass'].iloc[i]!r}; expected one "
            f"of {list(CODE_CLASSES)}"
        )
    dup = df["Name"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        first = int(np.flatnonzero((df["Name"] == df["Name"].iloc[i]).to_numpy())[0])
        raise RccError(
            f"{source}, line {linenos[i]}: probe {df['Name'].iloc[i]!r} appears twice (first on "
            f"line {linenos[first]}); each probe name must appear once"
        )
    return df


def _decode(data: bytes, source: str) -> str:
    if source.lower().endswith(".gz") or data[:2] == b"\x1f\x8b":  # by name or gzip magic
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise RccError(f"{source}: not a readable gzip file ({err})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # comments may hold Windows-1252 text; probes are ASCII


def read_rcc(path: str | os.PathLike) -> RccFile:
    """One RCC file (``.RCC`` or ``.RCC.gz``) from disk."""
    path = str(path)
    return parse_rcc(_decode(Path(path).read_bytes(), path), path)


def read_rcc_tar(path: str | os.PathLike) -> list[RccFile]:
    """The ``*.RCC`` / ``*.RCC.gz`` members of a tar (GEO's GSEnnn_RAW.tar), read in memory.

    Only regular-file members are read; other members are ignored (listed nowhere, as they
    carry no data: folders, and files of other types that GEO packs beside the RCC files are
    skipped by name). Member paths are used only for their base name; nothing is extracted."""
    path = str(path)
    out = []
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if not member.isfile() or not is_rcc_name(member.name):
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                source = f"{path}:{member.name}"
                text = _decode(handle.read(), source)
                rcc = parse_rcc(text, source)
                out.append(rcc)
    except tarfile.TarError as err:
        raise RccError(f"{path}: not a readable tar archive ({err})") from None
    if not out:
        raise RccError(f"{path}: the archive holds no *.RCC or *.RCC.gz file")
    return out


def rcc_paths(source: str | os.PathLike | list) -> list[str]:
    """The files a source stands for: a folder's ``*.RCC``/``*.RCC.gz`` (sorted), a tar, one
    file, or a list of files. A folder without RCC files is an error."""
    if isinstance(source, (list, tuple)):
        return [str(p) for p in source]
    source = str(source)
    if os.path.isdir(source):
        found = sorted(str(p) for p in Path(source).iterdir() if p.is_file() and is_rcc_name(p.name))
        if not found:
            raise RccError(f"{source}: the folder holds no *.RCC or *.RCC.gz file")
        return found
    return [source]


def read_rcc_files(paths: list[str]) -> list[RccFile]:
    """Each path an RCC file or a tar of them."""
    out: list[RccFile] = []
    for p in paths:
        if is_rcc_name(p):
            out.append(read_rcc(p))
        elif tarfile.is_tarfile(p):
            out.extend(read_rcc_tar(p))
        else:
            raise RccError(f"{p}: neither an RCC file (*.RCC, *.RCC.gz) nor a tar of RCC files")
    return out


def combine(rccs: list[RccFile]) -> RccSet:
    """One table from the lanes of one panel: every file must have the same probes (names,
    CodeClass, Accession); sample ids (file names) must be unique."""
    if not rccs:
        raise RccError("no RCC file to read")
    seen: dict[str, str] = {}
    for r in rccs:
        if r.sample in seen:
            raise RccError(
                f"{r.source}: sample id {r.sample!r} (from the file name) also comes from "
                f"{seen[r.sample]}; file names must be unique"
            )
        seen[r.sample] = r.source
    ref = rccs[0]
    probes = ref.code_summary.set_index("Name")[["CodeClass", "Accession"]]
    columns = {}
    for r in rccs:
        cs = r.code_summary.set_index("Name")
        if set(cs.index) != set(probes.index):
            extra = sorted(set(cs.index) - set(probes.index))[:5]
            lack = sorted(set(probes.index) - set(cs.index))[:5]
            raise RccError(
                f"{r.source}: its probes differ from those of {ref.source} (extra {extra}, "
                f"missing {lack}); all files must be of one panel (GeneRLF)"
            )
        cs = cs.loc[probes.index]
        diff = (cs["CodeClass"] != probes["CodeClass"]) | (cs["Accession"] != probes["Accession"])
        if diff.any():
            name = diff.index[diff.to_numpy()][0]
            raise RccError(
                f"{r.source}: probe {name!r} is {cs.loc[name, 'CodeClass']}/{cs.loc[name, 'Accession']} "
                f"but {probes.loc[name, 'CodeClass']}/{probes.loc[name, 'Accession']} in {ref.source}"
            )
        columns[r.sample] = cs["Count"].to_numpy()
    counts = pd.DataFrame(columns, index=probes.index)
    counts.index.name = "probe"
    lanes = pd.DataFrame(
        [
            {
                "sample": r.sample,
                "source": r.source,
                **{f"Header.{k}": v for k, v in r.header.items()},
                **{f"Sample.{k}": v for k, v in r.sample_attributes.items()},
                **{("LaneID" if k == "ID" else k): v for k, v in r.lane_attributes.items()},
            }
            for r in rccs
        ]
    ).set_index("sample")
    for col in NUMERIC_LANE:
        if col not in lanes:
            raise RccError(
                f"{rccs[0].source}: <Lane_Attributes> lacks {col} in some file(s); expected "
                f"{', '.join(NUMERIC_LANE)}"
            )
        num = pd.to_numeric(lanes[col].replace("", np.nan), errors="coerce")
        bad = num.isna()
        if bad.any():
            s = lanes.index[bad.to_numpy()][0]
            raise RccError(
                f"{lanes.loc[s, 'source']}: <Lane_Attributes> {col} is {lanes.loc[s, col]!r}; "
                "expected a number"
            )
        lanes[col] = num
    probes = probes.copy()
    probes.index.name = "probe"
    return RccSet(counts=counts, probes=probes, lanes=lanes, sources=dict(seen))


def read_rcc_set(source) -> RccSet:
    """Counts, probes and lanes of the RCC files a source stands for (see rcc_paths)."""
    return combine(read_rcc_files(rcc_paths(source)))


def samples_from_names(samples: list[str], regex: str, where: str = "rcc.sample_regex") -> pd.DataFrame:
    """Sample sheet from the file names: each name must match ``regex`` (re.fullmatch); its
    named groups become columns (an absent optional group is NA). Index: sample."""
    try:
        pat = re.compile(regex)
    except re.error as err:
        raise RccError(f"{where}: {regex!r} is not a regular expression ({err})") from None
    if not pat.groupindex:
        raise RccError(f"{where}: {regex!r} has no named group (?P<field>...); name the fields")
    rows = []
    for s in samples:
        m = pat.fullmatch(s)
        if m is None:
            raise RccError(
                f"{where}: file name {s!r} does not match {regex!r}; every RCC file name must "
                "match (exclude a sample with pairing.exclude, not by a non-matching name)"
            )
        rows.append({"sample": s, **m.groupdict()})
    sheet = pd.DataFrame(rows).set_index("sample")
    return sheet
