"""Evaluation: retrieval (Recall@K, MAP@R) and attribute metrics."""
