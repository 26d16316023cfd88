"""The bundle: writer and reader (the only code importing duckdb) and hybrid search."""
