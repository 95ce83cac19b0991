"""Code context with tree-sitter: documents, windows, definitions, snippets, the workspace index."""
