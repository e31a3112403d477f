"""Text opponents and word-level attacks on them (the ML core of the text rounds; torch runs only here)."""
