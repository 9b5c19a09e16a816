"""Gene sets (GMT, aliases), prerank GSEA and ORA, per-sample set scores."""
