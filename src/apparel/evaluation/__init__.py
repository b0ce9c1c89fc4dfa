"""Evaluation: retrieval (Recall@K, MAP@R), attribute metrics and landmark localisation error."""
