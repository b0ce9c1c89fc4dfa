"""The training and retraining pipelines, their compiled IR, and how to run or submit them."""
