"""Models: the embedding network, the attribute branches on its trunk, the landmark-pooled local branch."""
