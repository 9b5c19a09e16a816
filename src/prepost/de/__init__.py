"""Differential expression: contrasts as data, limma's moderated t for log2 values, DESeq2's
method for counts (``nb``: vectorised over genes; ``general``: pydeseq2 for other designs)."""
