"""prepost: paired pre-/post-treatment tumour expression analysis."""

__version__ = "0.1.0"
