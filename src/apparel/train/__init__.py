"""Training: the plain loop, Ray Train runs, specialists, the unified student."""
