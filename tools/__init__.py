"""Tools of the project that the installed package does not ship: the benchmark and a private PostgreSQL."""
