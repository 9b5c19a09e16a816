# Reference for prepost.de.nb.fast_two_group_deseq2: DESeq2 1.38 on unpaired two-group count
# data, design ~ response (a formula, as an R user writes it), with planted count outliers so
# every branch of DESeq2's Cook's distance handling is exercised:
#   A  4 vs 5    Cook's filter in results() (cells of >= 3), no replacement
#   B  8 vs 10   every sample replaceable (>= 7): outliers replaced and refitted, no filter
#   C  4 vs 9    mixed: the 9 replaceable, the 4 used by the filter (replaceable cooks set 0)
#   D  2 vs 6    one cell below 3 samples: only the 6 give Cook's distances
#   E  30 vs 26  cells above 23.5 samples (the 1/8 trim of the robust dispersion)
# Simulated here (set.seed), so R is both the generator and the reference.
# Writes tests/fixtures/de/two_group_counts_<S>.tsv, two_group_samples.tsv and
# two_group_deseq2.tsv (with DESeq2's maxCooks and replace columns).
#   Rscript benchmarks/r_reference/two_group.R
suppressPackageStartupMessages(library(DESeq2))
dir <- file.path("tests", "fixtures", "de")
set.seed(20261123)
n_genes <- 300
sizes <- list(A = c(4, 5), B = c(8, 10), C = c(4, 9), D = c(2, 6), E = c(30, 26))
write_tsv <- function(df, name) {
  for (j in seq_along(df)) {
    if (is.double(df[[j]])) df[[j]] <- ifelse(is.na(df[[j]]), "NA", sprintf("%.17g", df[[j]]))
  }
  write.table(df, file.path(dir, name), sep = "\t", quote = FALSE, row.names = FALSE)
}
samples <- list()
results <- list()
for (s in names(sizes)) {
  n_nr <- sizes[[s]][1]
  n_r <- sizes[[s]][2]
  grp <- c(rep("non_responder", n_nr), rep("responder", n_r))
  ids <- c(sprintf("%s_N%02d", s, seq_len(n_nr)), sprintf("%s_R%02d", s, seq_len(n_r)))
  mean <- exp(rnorm(n_genes, 5, 2))
  disp <- 0.05 + 2 / mean
  lfc <- ifelse(runif(n_genes) < 0.15, rnorm(n_genes, 0, 1.5), 0)
  sf <- exp(rnorm(length(ids), 0, 0.25))
  mu <- outer(mean, sf) * 2^outer(lfc, as.numeric(grp == "responder"))
  cts <- matrix(as.integer(rnbinom(length(mu), mu = mu, size = 1 / disp)), nrow = n_genes)
  cts[1:2, ] <- 0                                   # all-zero genes
  out <- 3:22                                       # one planted outlier each
  for (g in out) {
    j <- sample(length(ids), 1)
    cts[g, j] <- as.integer(max(cts[g, ]) * 20 + 50)
  }
  cts[23, ] <- 0
  cts[23, ncol(cts)] <- 1000L                               # a lone count: replaced to zero in B
  storage.mode(cts) <- "integer"
  rownames(cts) <- sprintf("t%04d", seq_len(n_genes))
  colnames(cts) <- ids
  write_tsv(data.frame(gene = rownames(cts), cts, check.names = FALSE),
            sprintf("two_group_counts_%s.tsv", s))
  cd <- data.frame(sample = ids, response = factor(grp, levels = c("non_responder", "responder")))
  rownames(cd) <- ids
  samples[[s]] <- data.frame(scenario = s, sample = ids, response = grp)
  dds <- DESeq(DESeqDataSetFromMatrix(cts, colData = cd, design = ~response), quiet = TRUE)
  res <- results(dds, name = "response_responder_vs_non_responder")
  results[[s]] <- data.frame(
    scenario = s, gene = rownames(res), baseMean = res$baseMean,
    log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE, stat = res$stat,
    pvalue = res$pvalue, padj = res$padj, maxCooks = mcols(dds)$maxCooks,
    replace = if (is.null(mcols(dds)$replace)) FALSE else mcols(dds)$replace,
    true_lfc = lfc)
}
write_tsv(do.call(rbind, samples), "two_group_samples.tsv")
write_tsv(do.call(rbind, results), "two_group_deseq2.tsv")
