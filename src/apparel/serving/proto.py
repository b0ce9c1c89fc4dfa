"""Generates the gRPC stubs of ``serving/apparel.proto`` into ``apparel/serving/stubs/``."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

PROTO = Path(__file__).resolve().parents[3] / "serving" / "apparel.proto"
STUBS = Path(__file__).resolve().parent / "stubs"


def generate(proto: Path = PROTO, out: Path = STUBS) -> list[Path]:
    """Runs protoc (grpcio-tools) and makes the stubs import each other within the package."""
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        code = protoc.main(["protoc", f"-I{proto.parent}", f"--python_out={folder}", f"--grpc_python_out={folder}",
                            str(proto)])
        if code != 0:
            raise RuntimeError(f"protoc failed on {proto}")
        written = []
        for generated in sorted(Path(folder).glob("*.py")):
            text = re.sub(r"^import apparel_pb2 as", "from apparel.serving.stubs import apparel_pb2 as",
                          generated.read_text(), flags=re.M)
            target = out / generated.name
            target.write_text(text)
            written.append(target)
    (out / "__init__.py").write_text('"""Generated from serving/apparel.proto by `make proto`; do not edit."""\n')
    return written


if __name__ == "__main__":
    for path in generate():
        print(path)
