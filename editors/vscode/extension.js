// Starts `triggerc lsp` (stdio) for .trg files. The colouring comes from the TextMate grammar
// in syntaxes/; everything else (diagnostics, hover, completion, definitions, references,
// outline, formatting, quick fixes) from the server. Setup: README.md, "Editors and coding agents".
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("triggerlang").get("server.command");
  const server = { command, args, options: { env: process.env } };
  client = new LanguageClient("triggerlang", "triggerlang", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "triggerlang" }, { scheme: "untitled", language: "triggerlang" }],
  });
  client.start();
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
