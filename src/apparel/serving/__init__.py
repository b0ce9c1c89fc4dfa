"""Serving the champion: the library behind the BentoML service and the gRPC server."""
