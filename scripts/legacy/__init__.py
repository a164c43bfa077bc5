"""Reading the legacy Session event streams and planning their migration onto Agents."""
