"""The Optuna study, budgets, early stopping, orchestration and results."""
