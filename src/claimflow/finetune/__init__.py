"""Training: soft prompts (prompt tuning) for check-worthiness; more trainers follow the same shape."""
