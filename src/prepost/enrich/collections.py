"""The genesets rule's step: every configured GMT collection brought into the cache and
recorded. Kept apart from ``run`` so the job imports neither gseapy nor the plots (it is on
the path to every dataset's prepare)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prepost import files
from prepost.enrich import genesets
from prepost.io import download

PROVENANCE_COLUMNS = ["collection", "source", "file", "sha256", "sets", "genes"]


def fetch_collections(collections: list[dict], outdir, provenance_path, **fetch_kw) -> pd.DataFrame:
    """Bring every configured GMT into ``outdir`` through the download client, checked.

    A collection comes from a local ``path`` or a ``url``; with ``sha256`` configured the file
    must match it. Gene-set library names that download behind the user's back are never used.
    """
    rows = []
    outdir = Path(outdir)
    for c in collections:
        source = c.get("url") or c.get("path")
        dest = outdir / f"{c['name']}.gmt"
        row = download.fetch(source, dest, expect="text", known_sha256=c.get("sha256"), **fetch_kw)
        if c.get("sha256") and row["sha256"] != c["sha256"]:
            dest.unlink(missing_ok=True)
            raise download.DownloadError(
                f"gene-set collection {c['name']!r} from {source}: sha256 {row['sha256']} does not "
                f"match the configured {c['sha256']} (enrichment.collections)"
            )
        sets = genesets.read_gmt(dest)
        rows.append(
            {
                "collection": c["name"],
                "source": source,
                "file": dest.name,
                "sha256": row["sha256"],
                "sets": sets["set"].nunique(),
                "genes": sets["gene"].nunique(),
            }
        )
    table = pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)
    files.write_tsv(table, provenance_path)
    return table
