"""Every tool's schemas, annotations and manifest come from its one definition, and are valid."""

import pytest
from jsonschema.validators import validator_for

from longtail_mcp.mcp_glue.server import mcp_tool
from system_servers import SERVERS

ALL = [(name, spec) for name, module in SERVERS.items() for spec in module.TOOLS]


@pytest.mark.parametrize(("server", "spec"), ALL, ids=[f"{n}/{s.name}" for n, s in ALL])
def test_each_tool_publishes_valid_object_schemas_and_honest_annotations(server: str, spec) -> None:
    tool = mcp_tool(spec)
    for schema in (tool.input_schema, tool.output_schema):
        validator_for(schema).check_schema(schema)
        assert schema["type"] == "object"
    assert tool.input_schema.get("additionalProperties") is False, "unknown arguments are refused"
    hints = tool.annotations
    assert hints.read_only_hint == spec.read_only
    if spec.read_only:
        assert not hints.destructive_hint, "a read-only tool cannot be destructive"
    manifest = spec.manifest(server)
    assert manifest["input_schema"] == tool.input_schema and manifest["annotations"]["readOnlyHint"] == spec.read_only
    assert manifest["tags"], "tools carry tags for discovery"
    assert tool.title and tool.title == hints.title and tool.title[0].isupper(), "a title a person reads"


def test_titles_read_like_words() -> None:
    titles = {spec.name: mcp_tool(spec).title for _, spec in ALL}
    assert titles["run_sql"] == "Run SQL" and titles["fetch_json"] == "Fetch JSON"
    assert titles["get_escalation_stats"] == "Get escalation stats"


def test_tool_names_are_unique_across_the_family() -> None:
    names = [spec.name for _, spec in ALL]
    assert len(names) == len(set(names))
