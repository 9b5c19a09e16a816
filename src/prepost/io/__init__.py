"""Inputs: GEO readers (series matrix, platform annotation, count tables), the download client
and the files each dataset kind needs."""
