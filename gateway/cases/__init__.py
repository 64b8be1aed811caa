"""The case after acceptance: its lifecycle, deadlines, evaluation and the monthly bulletin."""
