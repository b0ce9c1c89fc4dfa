"""A base install (no [cpu] or [gpu] extra) has no faiss: where the project first needs it (the index module, the
retrieval metrics) it fails with one line naming the extras."""

import subprocess
import sys
import textwrap

import pytest

# Run in a fresh interpreter where importing faiss fails as it does when the package is not installed.
WITHOUT_FAISS = textwrap.dedent("""
    import importlib.abc
    import sys

    class NoFaiss(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "faiss" or name.startswith("faiss."):
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.modules.pop("faiss", None)
    sys.meta_path.insert(0, NoFaiss())
    try:
        {use}
    except ModuleNotFoundError as error:
        print(f"{{error.name}}|{{error}}")
    else:
        print("ran without faiss")
""")
USES = {"index": "import apparel.index",
        "retrieval": "from apparel.evaluation.retrieval import RetrievalCalculator; RetrievalCalculator()"}


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_without_faiss_the_first_use_names_the_extras(use: str) -> None:
    out = subprocess.run([sys.executable, "-c", WITHOUT_FAISS.format(use=use)], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    assert out.strip() == "faiss|faiss is not installed: install apparel[cpu] or apparel[gpu]"
