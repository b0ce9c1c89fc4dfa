"""Models: the embedding network and the attribute branches on its trunk."""
