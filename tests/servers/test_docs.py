"""docs/mcp.md is generated from the tool definitions and must be current."""

from pathlib import Path

from system_servers.docs import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"


def test_docs_mcp_md_matches_the_tool_definitions() -> None:
    assert DOC.read_text() == render(), "regenerate it: python -m system_servers.docs > docs/mcp.md"


def test_every_tool_is_documented_with_its_arguments() -> None:
    text = DOC.read_text()
    from system_servers import SERVERS

    for module in SERVERS.values():
        for spec in module.TOOLS:
            assert f"### `{spec.name}`" in text
            for arg in spec.input_schema().get("properties", {}):
                assert f"| `{arg}` |" in text


def test_every_resource_and_prompt_is_documented() -> None:
    text = DOC.read_text()
    from system_servers import SERVERS

    for module in SERVERS.values():
        for resource in module.RESOURCES:
            assert f"| `{resource.uri}` |" in text
        for prompt in module.PROMPTS:
            assert f"### Prompt `{prompt.name}`" in text
            for arg in prompt.arguments():
                assert f"| `{arg.name}` |" in text
