"""From downloaded files to a clean genes x samples matrix and a paired sample sheet."""
