from longtail_mcp.cli import main

main()
