// tsconfig.protocol.json maps the module 'vscode' to this file, which is not a module:
// an import of 'vscode' from src/protocol or the Node tests fails the type check
// (they run in plain Node, where there is no VS Code API).
