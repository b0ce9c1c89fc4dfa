"""The BentoML service (``bentoml serve service:ApparelService`` from this folder, or ``apparel serve``).

It lives in the library, ``apparel.serving.bento``, so the installed package serves without this
folder; this file is what ``bentofile.yaml`` points at.
"""

from apparel.serving.bento import ApparelService

__all__ = ["ApparelService"]
