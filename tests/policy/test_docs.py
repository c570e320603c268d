"""docs/policy.md documents every property of the schema."""

from __future__ import annotations

from pathlib import Path

from elens.policy import schema

ROOT = Path(__file__).resolve().parents[2]


def schema_paths() -> list[str]:
    s = schema()

    def walk(node: dict, prefix: str, out: list[str]) -> None:
        if "$ref" in node:
            node = {**s["$defs"][node["$ref"].rsplit("/", 1)[-1]], **node}
        for key, value in node.get("properties", {}).items():
            path = f"{prefix}.{key}" if prefix else key
            out.append(path)
            walk(value, path, out)
        if isinstance(node.get("items"), dict):
            walk(node["items"], prefix + "[]", out)

    out: list[str] = []
    walk(s, "", out)
    return out


def test_every_schema_property_is_documented():
    doc = (ROOT / "docs" / "policy.md").read_text()
    paths = schema_paths()
    assert "categories[].thresholds.text" in paths and "pipeline.text_checks[].options" in paths
    missing = [p for p in paths if f"`{p}`" not in doc]
    assert missing == [], f"docs/policy.md does not document: {missing}"


def test_documented_fields_exist():
    import re

    doc = (ROOT / "docs" / "policy.md").read_text()
    table = doc.split("## Every field", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert sorted(documented) == sorted(schema_paths())
