# R side of benchmarks/de/grouped.py: DESeq2 1.38 with the within-group paired design
# ~ patient + post:non_responder + post:responder (as tests/fixtures/de/resp_counts_deseq2.tsv).
#
# Usage: Rscript benchmarks/de/bench_grouped.R DATA_PREFIX OUT_TSV
#   reads DATA_PREFIX_counts.tsv and DATA_PREFIX_samples.tsv (sample, patient, timepoint,
#   response); writes contrast, gene, mean_expr, log2fc, lfc_se, stat, pvalue, padj (17
#   significant digits) for post_vs_pre_responder (name = "post.responder"),
#   post_vs_pre_non_responder and interaction (numeric contrast post.responder -
#   post.non_responder), defaults otherwise; prints "compute_seconds <s>" (fit + results).

suppressPackageStartupMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript bench_grouped.R DATA_PREFIX OUT_TSV")
prefix <- args[1]; out_file <- args[2]
s <- read.delim(paste0(prefix, "_samples.tsv"), colClasses = "character")
rownames(s) <- s$sample
x <- as.matrix(read.delim(paste0(prefix, "_counts.tsv"), row.names = 1, check.names = FALSE))
x <- x[, s$sample]
s$patient <- factor(s$patient)
post <- as.numeric(s$timepoint == "post")
full <- cbind(model.matrix(~ patient, data = s),
              post.non_responder = post * (s$response == "non_responder"),
              post.responder = post * (s$response == "responder"))
t0 <- proc.time()[["elapsed"]]
dds <- DESeqDataSetFromMatrix(x, colData = s, design = ~ 1)
dds <- DESeq(dds, full = full, quiet = TRUE)
cn <- resultsNames(dds)
w <- setNames(rep(0, length(cn)), cn)
w[c("post.responder", "post.non_responder")] <- c(1, -1)
res <- list(post_vs_pre_responder = results(dds, name = "post.responder"),
            post_vs_pre_non_responder = results(dds, name = "post.non_responder"),
            interaction = results(dds, contrast = w))
cat("compute_seconds", proc.time()[["elapsed"]] - t0, "\n")
out <- do.call(rbind, lapply(names(res), function(k) {
  r <- res[[k]]
  data.frame(contrast = k, gene = rownames(r), mean_expr = r$baseMean, log2fc = r$log2FoldChange,
             lfc_se = r$lfcSE, stat = r$stat, pvalue = r$pvalue, padj = r$padj)
}))
for (j in seq_along(out)) {
  if (is.double(out[[j]])) out[[j]] <- ifelse(is.na(out[[j]]), "NA", sprintf("%.17g", out[[j]]))
}
tmp <- paste0(out_file, ".part")
write.table(out, tmp, sep = "\t", quote = FALSE, row.names = FALSE)
file.rename(tmp, out_file)
