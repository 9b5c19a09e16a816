"""Snakemake glue: fetch one dataset's GEO files into the cache with a manifest."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from prepost.io import download  # noqa: E402
from prepost.logs import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:
    p = snakemake.params
    manifest = Path(snakemake.output.manifest)
    table = download.download_dataset(
        [tuple(e) for e in p.entries],
        p.base_url,
        manifest.parent,
        manifest,
        offline=p.offline,
        timeout=p.timeout,
        retries=p.retries,
        backoff=p.backoff,
    )
    log.info("%s: %d file(s)\n%s", snakemake.wildcards.ds, len(table), table.to_string())
