"""recoup-runs: copies every Recoup task run into a DuckDB warehouse."""
