"""``prepost init GSEnnn [GSEmmm ...]``: propose a config from GEO series.

``init`` reads each series' sample sheet (the series matrix, fetched through the download
client from ``--base-url``; or a local series matrix, family SOFT or count table), shows the
samples' fields, proposes the pairing with its evidence (prepost.propose) and prints a dataset
block to paste under ``datasets:``, or writes a new config file (``--output``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import pandas as pd

from prepost.io.download import (
    DEFAULT_BASE_URL,
    DownloadError,
    NotFoundError,
    family_soft_relpath,
    fetch,
    geo_url,
    series_matrix_relpath,
)
from prepost.files import write_text
from prepost.io.counts import read_counts
from prepost.io.geo import (
    GeoFormatError,
    SeriesMatrix,
    _open_text,
    parse_family_soft,
    parse_series_matrix,
)
from prepost.cli.propose import Proposal, propose, q, render_block, render_report

_GSE = re.compile(r"^GSE\d+$")
_SEQ = re.compile(r"sequencing", re.IGNORECASE)


class InitError(RuntimeError):
    """A source that cannot be read; the message names it and what was expected."""


def _is_soft(path: Path) -> bool:
    with _open_text(path) as fh:
        for _, line in zip(range(50), fh):
            if line.startswith(("^DATABASE", "^SERIES", "^SAMPLE", "^PLATFORM")):
                return True
            if line.startswith("!Series_") or line.startswith("!Sample_"):
                return False
    return False


def _is_geo_text(path: Path) -> bool:
    with _open_text(path) as fh:
        for _, line in zip(range(50), fh):
            if line.startswith(("^", "!Series_", "!Sample_", "!series_matrix")):
                return True
    return False


def _first(series: dict, key: str) -> str:
    return (series.get(key) or [""])[0]


def _header(sm: SeriesMatrix, accession: str) -> tuple[dict, list[str]]:
    """Dataset keys (kind, accession, platform or counts) and notes from the series metadata."""
    notes: list[str] = []
    platforms = list(dict.fromkeys(sm.series.get("platform_id", [])))
    if not platforms and "platform_id" in sm.samples:
        platforms = list(dict.fromkeys(sm.samples["platform_id"].dropna().astype(str)))
    types = " ".join(sm.series.get("type", []))
    h: dict = {}
    title = _first(sm.series, "title")
    if _SEQ.search(types):
        h["kind"] = "geo_counts"
        h["accession"] = accession
        if title:
            h["description"] = title
        suppl = [u.rsplit("/", 1)[-1] for u in sm.series.get("supplementary_file", [])]
        tables = [s for s in suppl if re.search(r"count", s, re.IGNORECASE) and not s.endswith(".tar")]
        if len(tables) == 1:
            h["counts"] = {"file": tables[0]}
            notes.append(f"counts: the series' supplementary count table {tables[0]} (columns matched "
                         "to samples by title: counts.sample_key)")
        else:
            h["counts"] = {"source": "ncbi"}
            notes.append("counts: GEO's NCBI-generated counts; supplementary files of the series: "
                         + (", ".join(suppl) if suppl else "none")
                         + " (use counts: {file: <name>} for a submitter table)")
    else:
        h["kind"] = "geo_series_matrix"
        h["accession"] = accession
        if title:
            h["description"] = title
        if platforms:
            h["platform"] = {"accession": platforms[0], "file": "annot"}
        else:
            notes.append("platform: not named in the file; set platform: {accession: GPLnnn}")
    if len(platforms) > 1:
        notes.append(f"the series has {len(platforms)} platforms ({', '.join(platforms)}): one dataset "
                     "per platform, with series_matrix: GSEnnn-GPLnnn_series_matrix.txt.gz")
    if types:
        notes.append(f"series type: {types}")
    return h, notes


def _count_table_samples(path: Path) -> pd.DataFrame:
    """A count table's sample columns as a sheet (sample = column name = title)."""
    try:
        table = read_counts(path)
    except GeoFormatError as err:
        raise InitError(str(err)) from None
    cols = [str(c) for c in table.counts.columns]
    return pd.DataFrame({"title": cols}, index=pd.Index(cols, name="sample"))


def load_source(source: str, base_url: str, cache: Path, offline: bool = False,
                timeout: float = 60, retries: int = 2) -> tuple[str, str, pd.DataFrame, dict, list[str]]:
    """(dataset name, where it came from, samples, dataset header keys, notes) of one source."""
    path = Path(source)
    if _GSE.match(source) and not path.exists():
        acc = source
        dest = cache / f"{acc}_series_matrix.txt.gz"
        rel = series_matrix_relpath(acc)
        try:
            fetch(geo_url(base_url, rel), dest, offline=offline, timeout=timeout, retries=retries)
            sm = parse_series_matrix(dest)
            where = f"{acc} series matrix ({geo_url(base_url, rel)})"
        except NotFoundError:
            rel = family_soft_relpath(acc)
            dest = cache / f"{acc}_family.soft.gz"
            try:
                fetch(geo_url(base_url, rel), dest, offline=offline, timeout=timeout, retries=retries)
            except NotFoundError as err:
                raise InitError(f"{acc}: neither its series matrix nor its family SOFT was found under "
                                f"{base_url} ({err}); check the accession and --base-url") from None
            sm = parse_family_soft(dest)
            where = f"{acc} family SOFT ({geo_url(base_url, rel)})"
        except (DownloadError, GeoFormatError) as err:
            raise InitError(f"{acc}: {err}") from None
        header, notes = _header(sm, acc)
        return acc, where, sm.samples, header, notes
    if not path.is_file():
        raise InitError(f"{source}: not a GEO series accession (GSEnnn) nor an existing file")
    try:
        if _is_geo_text(path):
            sm = parse_family_soft(path) if _is_soft(path) else parse_series_matrix(path)
            acc = sm.accession or re.sub(r"\W+", "_", path.name.split(".")[0])
            header, notes = _header(sm, acc)
            kind = "family SOFT" if _is_soft(path) else "series matrix"
            return acc, f"{kind} {path}", sm.samples, header, notes
    except GeoFormatError as err:
        raise InitError(str(err)) from None
    samples = _count_table_samples(path)
    name = re.sub(r"\W+", "_", path.name.split(".")[0]).strip("_") or "dataset"
    header = {"kind": "local", "expression": str(path), "values": "counts",
              "samples": f"{name}_samples.tsv"}
    notes = ["a count table has no sample sheet: write samples (column 'sample' = the table's column "
             "names, plus 'title' and any field you pair on); init read patient and timepoint from "
             "the column names, so the sheet's title column is the column name"]
    return name, f"count table {path}", samples, header, notes


def render_config(props: list[Proposal], base_url: str) -> str:
    """A new config file: the demo's settings (shipped claims and gene sets) and the datasets."""
    lines = [
        "# Written by `prepost init`: check every commented choice before running.",
        "# Paths starting with <workflow>/ are the workflow's own files (its claims catalogue and",
        "# curated gene sets); any other relative path is relative to the working directory.",
        "",
        "results: results",
        "resources: resources",
        "claims: <workflow>/config/claims.yaml",
        "",
        "download:",
        f"  base_url: {q(base_url)}",
        "  offline: false",
        "  timeout: 120",
        "  retries: 4",
        "  backoff: 2.0",
        "",
        "enrichment:",
        "  collections:",
        "    - name: prepost_curated",
        "      path: <workflow>/config/genesets/prepost_curated.gmt",
        "",
        "datasets:",
    ]
    text = "\n".join(lines) + "\n"
    for prop in props:
        text += render_block(prop) + "\n"
    return text


def _write_new(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise InitError(f"{path} exists; choose another --output or add --force to replace it")
    write_text(text, path)


def init_main(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    cache_ctx = tempfile.TemporaryDirectory(prefix="prepost-init-") if args.cache is None else None
    cache = Path(args.cache) if args.cache else Path(cache_ctx.name)
    props = []
    try:
        for source in args.sources:
            name, where, samples, header, notes = load_source(
                source, args.base_url, cache, offline=args.offline, timeout=args.timeout,
                retries=args.retries)
            prop = propose(samples, name, where, header, notes)
            props.append(prop)
            out.write(render_report(prop) + "\n")
    finally:
        if cache_ctx is not None:
            cache_ctx.cleanup()
    if args.output:
        _write_new(Path(args.output), render_config(props, args.base_url), args.force)
        out.write(f"wrote {args.output}: check the commented choices, then\n"
                  f"  snakemake --cores all --configfile {args.output}\n")
    else:
        out.write("# ---- paste under datasets: in your config ----\n")
        for prop in props:
            out.write(render_block(prop) + "\n")
    return 0


def add_init_parser(sub) -> None:
    p = sub.add_parser(
        "init", help="propose a dataset config (pairing, response) from GEO series",
        description="Read each series' sample sheet, propose patient, timepoint and response "
                    "with the evidence, and print the dataset blocks (or write a config file).")
    p.add_argument("sources", nargs="+", metavar="GSE_OR_FILE",
                   help="GEO series accessions, or local series matrix / family SOFT / count table files")
    p.add_argument("--base-url", default=os.environ.get("PREPOST_GEO_BASE_URL", DEFAULT_BASE_URL),
                   help="GEO (default), a mirror URL or a local folder laid out like GEO "
                        "(e.g. resources/demo/geo); env PREPOST_GEO_BASE_URL")
    p.add_argument("--output", "-o", help="write a new config file instead of printing blocks")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
    p.add_argument("--cache", help="keep the fetched files in this folder (default: a temporary one)")
    p.add_argument("--offline", action="store_true", help="use only files already in --cache")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--retries", type=int, default=2)
    p.set_defaults(func=init_main)
