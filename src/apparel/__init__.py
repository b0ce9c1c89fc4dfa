"""apparel: unified apparel embeddings, progressive attribute branches and the MLOps around them."""
