"""Registry: MLflow tracking, the registered pyfunc, the promotion gate and the alias audit trail."""
