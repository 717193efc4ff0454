// Starts `imspec lsp` for .imspec files. The grammar and language settings need no code;
// this file only wires the language server (vscode-languageclient, installed by `npm install`).
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("imspec").get("server.path") || "imspec";
  client = new LanguageClient(
    "imspec",
    "imspec language server",
    { command, args: ["lsp"] },
    { documentSelector: [{ scheme: "file", language: "imspec" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
