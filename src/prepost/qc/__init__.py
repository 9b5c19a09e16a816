"""Sample QC: PCA, correlation, distributions, pair identity and outlier flags."""
