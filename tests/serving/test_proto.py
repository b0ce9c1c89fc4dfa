"""The committed gRPC stubs are what `make proto` generates from serving/apparel.proto."""

from pathlib import Path

from apparel.serving.proto import STUBS, generate


def test_stubs_are_in_sync_with_the_proto(tmp_path: Path) -> None:
    for generated in generate(out=tmp_path):
        assert generated.read_text() == (STUBS / generated.name).read_text(), f"run `make proto` ({generated.name})"
