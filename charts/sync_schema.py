"""Keeps the chart's ``values.schema.json`` in step with the project's typed ``Config``.

The ``config`` key of the chart's values is the project's config file, so its schema is generated from
``apparel.config.Config`` (unknown keys and wrong types rejected, as pydantic would); the rest of the schema
(keys named ``Chart*`` under ``$defs``) is written by hand. Run after adding a config section:
``python charts/sync_schema.py``; ``--check`` exits 1 when a file is out of date (the tests do the same). It also
writes ``files/config-fields.json`` (section -> field names), which the templates read to set keys such as
``pipeline.pvc_name`` once the Config has them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from apparel.config import Config

SCHEMA = Path(__file__).resolve().parent / "apparel" / "values.schema.json"
FIELDS = SCHEMA.parent / "files" / "config-fields.json"  # what the templates can see (.Files has no schema)
CHART_DEFS_PREFIX = "Chart"


def _strip_titles(node):
    """pydantic's titles repeat the field names; drop them to keep the schema readable."""
    if isinstance(node, dict):
        return {key: _strip_titles(value) for key, value in node.items()
                if key != "title" or not isinstance(value, str)}
    if isinstance(node, list):
        return [_strip_titles(item) for item in node]
    return node


def synced_schema(current: dict) -> dict:
    config = _strip_titles(Config.model_json_schema())
    config_defs = config.pop("$defs", {})
    config["description"] = "The project's config file (src/apparel/config.py): overrides of its defaults."
    schema = dict(current)
    schema["properties"] = {**current["properties"], "config": config}
    chart_defs = {k: v for k, v in current.get("$defs", {}).items() if k.startswith(CHART_DEFS_PREFIX)}
    schema["$defs"] = {**chart_defs, **dict(sorted(config_defs.items()))}
    return schema


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2) + "\n"


def config_fields() -> dict[str, list[str]]:
    """Section -> field names of the typed Config, for the chart's `apparel.configHas`."""
    sections = {name: field.annotation for name, field in Config.model_fields.items()}
    return {name: sorted(section.model_fields) for name, section in sections.items()
            if isinstance(section, type) and issubclass(section, BaseModel)}


def render_fields() -> str:
    return json.dumps(config_fields(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    current_text = SCHEMA.read_text()
    wanted = render(synced_schema(json.loads(current_text)))
    fields = render_fields()
    if "--check" in argv:
        if wanted != current_text or not FIELDS.is_file() or FIELDS.read_text() != fields:
            print(f"{SCHEMA} is out of date with apparel.config.Config: run `python charts/sync_schema.py`")
            return 1
        return 0
    SCHEMA.write_text(wanted)
    FIELDS.parent.mkdir(exist_ok=True)
    FIELDS.write_text(fields)
    print(f"wrote {SCHEMA} and {FIELDS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
