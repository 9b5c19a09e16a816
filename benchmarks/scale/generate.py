"""Generated GEO-format paired cohorts for the whole-workflow scale benchmark.

Why: the issue's targets (200 samples in 5 min, time linear in datasets, < 4 GB per rule at 600
samples) must be measured on inputs that go through the same download -> parse -> collapse -> DE
-> enrichment -> claims path as real GEO series. So the cohorts are written with the demo's own
writers (``tools/prepost_demo.py``: series matrix, GPL ``.annot``, supplementary count table, gzip with
mtime 0) into a local folder laid out like GEO's FTP tree, at 20,000 genes instead of 2,000.

Every dataset is a pure function of (kind, samples, index, seed), so scenarios share files: the
first dataset of the 16-dataset scenario is the 60-sample dataset of the samples scenarios. A file
that already exists is not rewritten (``--force`` rewrites).

    python benchmarks/scale/generate.py --samples 20 60 --datasets 1 --kind counts

All values are SYNTHETIC. Curated genes are the demo's real HGNC symbols (so claims and the
curated GMT resolve); every other gene is SCALEnnnnn.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))  # the demo generator (not part of the package)

import prepost_demo as demo  # noqa: E402

from prepost.io import download  # noqa: E402

N_GENES = 20_000
SEED = 20261123
OUT = Path(__file__).resolve().parent / "out"
KIND_CODE = {"array": 1, "counts": 2}
GPL = "GPL990101"  # one synthetic 20k platform shared by every array dataset
ALL_CONTRASTS = [
    "post_vs_pre",
    "responder_vs_non_responder_pre",
    "post_vs_pre_responder",
    "post_vs_pre_non_responder",
    "interaction",
]


def gene_universe(n_genes: int = N_GENES, seed: int = SEED) -> pd.DataFrame:
    """The demo's curated genes and planted effects plus SCALEnnnnn fillers, ``n_genes`` in all.

    Same columns as ``prepost_demo.gene_universe`` (so demo.array_probes / array_values /
    rnaseq_counts accept it); both cohorts measure every gene.
    """
    rng = np.random.default_rng([seed, 101])
    curated = pd.DataFrame(
        [(g, s) for s, genes in demo.GENE_SETS.items() for g in genes], columns=["gene", "gene_set"]
    )
    n_filler = n_genes - len(curated)
    filler = pd.DataFrame({"gene": [f"SCALE{i:05d}" for i in range(1, n_filler + 1)], "gene_set": "filler"})
    genes = pd.concat([curated, filler], ignore_index=True)
    genes["in_array"] = True
    genes["in_rnaseq"] = True
    planted = (
        pd.DataFrame.from_dict(demo.PLANTED, orient="index").reindex(columns=demo.COMPONENTS).fillna(0.0)
    )
    for c in demo.COMPONENTS:
        genes[c] = 0.0
    genes.loc[genes.set_index("gene").index.get_indexer(planted.index), demo.COMPONENTS] = planted.to_numpy()
    # 2% of fillers get a +-1 post effect so the DE tables are not all null.
    pick = rng.choice(np.arange(len(curated), n_genes), size=n_genes // 50, replace=False)
    genes.loc[pick, "post_all"] = rng.choice([-1.0, 1.0], size=len(pick))
    genes.loc[pick, "gene_set"] = "random_planted"
    return genes


def accession(kind: str, samples: int, index: int) -> str:
    """GSE9<kind><samples:04d><index:02d>: unique per dataset, stable across scenarios."""
    return f"GSE9{KIND_CODE[kind]}{samples:04d}{index:02d}"


def dataset_files(mirror: Path, kind: str, gse: str) -> dict[str, Path]:
    """Where a dataset's files live in the mirror (GEO's FTP layout, as prepost.download reads it)."""
    geo = mirror / "geo"
    files = {"series_matrix": geo / download.series_matrix_relpath(gse)}
    if kind == "array":
        files["platform"] = geo / download.platform_relpath(GPL, "annot")
    else:
        files["counts"] = geo / download.suppl_relpath(gse, f"{gse}_raw_counts.tsv.gz")
    return files


def design(gse: str, samples: int, index: int, seed: int) -> pd.DataFrame:
    """``samples/2`` patients pre and post (no unpaired sample), half responders."""
    if samples % 2:
        raise ValueError(f"samples must be even (pairs = samples/2), got {samples}")
    first_gsm = int(gse[3:]) * 1000 + 1  # GSM ids unique across every generated dataset
    return demo._design(gse, samples // 2, "none", first_gsm, seed, 1000 + index)


def write_dataset(
    mirror: Path, kind: str, samples: int, index: int, genes: pd.DataFrame, probes: pd.DataFrame | None,
    seed: int = SEED, force: bool = False,
) -> dict[str, Path]:
    """Write one dataset (and the shared platform file) unless already there."""
    gse = accession(kind, samples, index)
    files = dataset_files(mirror, kind, gse)
    todo = [p for p in files.values() if force or not p.exists()]
    if not todo:
        return files
    sheet = design(gse, samples, index, seed)
    ds_seed = seed + 7919 * index + samples
    if kind == "array":
        if force or not files["platform"].exists():
            demo._write_gz(demo.annot_text(probes).replace(demo.ARRAY_GPL, GPL), files["platform"])
        values = demo.array_values(genes, probes, sheet, ds_seed)
        text = demo.array_matrix_text(sheet, values)
        demo._write_gz(
            text.replace(demo.ARRAY_GSE, gse).replace(demo.ARRAY_GPL, GPL), files["series_matrix"]
        )
    else:
        counts = demo.rnaseq_counts(genes, sheet, ds_seed)
        name = files["counts"].name
        demo._write_gz(counts.to_csv(sep="\t", lineterminator="\n"), files["counts"])
        text = demo.rnaseq_matrix_text(sheet).replace(demo.COUNTS_FILE, name)
        demo._write_gz(text.replace(demo.RNASEQ_GSE, gse), files["series_matrix"])
    return files


def dataset_config(kind: str, samples: int, index: int, contrasts: list[str]) -> dict:
    """The config entry of one generated dataset (same fields as config/config.yaml's demo)."""
    gse = accession(kind, samples, index)
    pairing = {
        "timepoint": {"field": "timepoint", "map": {"pre-treatment": "pre", "post-treatment": "post"}},
        "response": {"field": "response", "map": {"pCR": "responder", "RD": "non_responder"}},
    }
    entry = {
        "kind": "geo_series_matrix" if kind == "array" else "geo_counts",
        "accession": gse,
        "description": f"SYNTHETIC scale benchmark: {kind}, {N_GENES} genes, {samples} samples",
        "treatment": ["chemotherapy", "anthracycline", "taxane"],
    }
    if kind == "array":
        entry["platform"] = {"accession": GPL, "file": "annot", "symbol_column": "Gene symbol"}
        entry["pairing"] = {"patient": {"field": "patient id"}, **pairing}
    else:
        entry["counts"] = {"file": f"{gse}_raw_counts.tsv.gz", "gene_column": "gene", "sample_key": "title"}
        entry["pairing"] = {"patient": {"field": "title", "regex": r"^(P\d+)_"}, **pairing}
    entry["contrasts"] = list(contrasts)
    return entry


def scenario_config(
    datasets: list[tuple[str, int, int]], mirror: Path, contrasts: list[str], root: Path = ROOT
) -> dict:
    """A whole config: config/config.yaml's settings with absolute paths, and these datasets.

    Absolute paths because Snakemake runs with ``--directory <workdir>``; results and the
    download cache stay relative, i.e. inside the workdir.
    """
    base = yaml.safe_load((root / "config" / "config.yaml").read_text())
    cfg = copy.deepcopy(base)
    cfg["results"] = "results"
    cfg["resources"] = "resources"
    cfg["claims"] = str(root / cfg["claims"])
    cfg["download"]["base_url"] = str((mirror / "geo").resolve())
    for c in cfg["enrichment"]["collections"]:
        if "path" in c:
            c["path"] = str(root / c["path"])
    if cfg["enrichment"].get("alias_table"):
        cfg["enrichment"]["alias_table"] = str(root / cfg["enrichment"]["alias_table"])
    cfg["enrichment"]["method"] = "multilevel"
    cfg["datasets"] = {
        f"{kind}_{samples}s_{index:02d}": dataset_config(kind, samples, index, contrasts)
        for kind, samples, index in datasets
    }
    return cfg


def generate(
    specs: list[tuple[str, int, int]], mirror: Path = OUT / "mirror", seed: int = SEED, force: bool = False,
    log=print,
) -> None:
    """Write every (kind, samples, index) dataset not yet in the mirror."""
    genes = gene_universe(N_GENES, seed)
    probes = demo.array_probes(genes, seed) if any(k == "array" for k, _, _ in specs) else None
    for kind, samples, index in specs:
        files = write_dataset(mirror, kind, samples, index, genes, probes, seed, force)
        size = sum(p.stat().st_size for p in files.values()) / 1e6
        log(f"{accession(kind, samples, index)}\t{kind}\t{samples} samples\t{size:.1f} MB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, nargs="+", default=[20, 60, 200, 600])
    ap.add_argument("--datasets", type=int, default=1, help="datasets per sample count (indices 0..n-1)")
    ap.add_argument("--kind", choices=["array", "counts"], nargs="+", default=["counts"])
    ap.add_argument("--mirror", type=Path, default=OUT / "mirror")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--force", action="store_true", help="rewrite files that exist")
    args = ap.parse_args(argv)
    specs = [(k, s, i) for k in args.kind for s in args.samples for i in range(args.datasets)]
    generate(specs, args.mirror, args.seed, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
