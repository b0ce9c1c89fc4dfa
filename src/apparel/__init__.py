"""apparel: unified apparel embeddings, progressive attribute branches and the MLOps around them."""

import logging

# faiss logs its AVX2/AVX512 fallbacks at INFO on every import (dozens of lines per pipeline run).
logging.getLogger("faiss.loader").setLevel(logging.WARNING)
