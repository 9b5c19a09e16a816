# DESeq2 on degenerate paired counts, for tests/test_nb.py.
#
# counts.tsv (6 pairs) with gene c0010's post counts set equal to its pre counts in every
# patient (a gene constant within patients), ~ patient + timepoint, results(contrast =
# c("timepoint", "post", "pre")), 17 significant digits -> const_gene_deseq2.tsv.
#
# Usage: Rscript benchmarks/r_reference/degenerate.R [DIR]   (DIR default tests/fixtures/de)
suppressPackageStartupMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args) >= 1) args[1] else "tests/fixtures/de"
s <- read.delim(file.path(dir, "counts_samples.tsv"), colClasses = "character")
s$patient <- factor(s$patient)
s$timepoint <- relevel(factor(s$timepoint), ref = "pre")
rownames(s) <- s$sample
cts <- as.matrix(read.delim(file.path(dir, "counts.tsv"), row.names = 1, check.names = FALSE))
cts <- cts[, s$sample]
for (p in levels(s$patient)) {
  cts["c0010", paste0("S", p, "_post")] <- cts["c0010", paste0("S", p, "_pre")]
}
dds <- DESeq(DESeqDataSetFromMatrix(cts, colData = s, design = ~patient + timepoint), quiet = TRUE)
res <- results(dds, contrast = c("timepoint", "post", "pre"))
out <- data.frame(gene = rownames(res), baseMean = res$baseMean,
                  log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE, stat = res$stat,
                  pvalue = res$pvalue, padj = res$padj)
for (j in 2:ncol(out)) out[[j]] <- ifelse(is.na(out[[j]]), "NA", sprintf("%.17g", out[[j]]))
write.table(out, file.path(dir, "const_gene_deseq2.tsv"), sep = "\t", quote = FALSE,
            row.names = FALSE)
