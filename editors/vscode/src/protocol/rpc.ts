/**
 * The smallest JSON-RPC surface the protocol modules need.
 *
 * Both the extension's `LanguageClient` (vscode-languageclient) and a plain
 * `MessageConnection` (vscode-jsonrpc, used by the Node tests) are adapted to it, so
 * the same code builds requests and reads answers in VS Code and in the tests.
 * Nothing here (or anywhere under src/protocol/) imports `vscode`.
 */
import type { CancellationToken } from 'vscode-languageserver-protocol';

export interface Disposable {
	dispose(): void;
}

export interface Rpc {
	sendRequest<R>(method: string, params: unknown, token?: CancellationToken): Promise<R>;
	sendNotification(method: string, params: unknown): Promise<void> | void;
	onNotification(method: string, handler: (params: any) => void): Disposable;
}

/** Server → client notifications and commands, by name (server/tandem/lsp/server.py). */
export const STATUS = 'tandem/status';
export const CHAT_DELTA = 'tandem/chatDelta';
export const CHAT_COMMAND = 'tandem.chat';
export const ACCEPT_COMMAND = 'tandem.acceptCompletion';
export const EXECUTE_COMMAND = 'workspace/executeCommand';

/** What a LanguageClient and a vscode-jsonrpc MessageConnection both offer. */
export interface Connection {
	sendRequest(method: string, param: unknown, token?: CancellationToken): Promise<unknown>;
	sendNotification(method: string, params: unknown): Promise<void> | void;
	onNotification(method: string, handler: (params: any) => void): Disposable;
}

/**
 * An `Rpc` over a connection. A request goes out with its token only when there is one:
 * both libraries send every argument but a trailing token as a param, so a trailing
 * `undefined` would turn the params into a positional list `[params, null]`, which a
 * server rejects as Invalid Params.
 */
export function rpcOf(connection: Connection): Rpc {
	return {
		sendRequest: <R>(method: string, params: unknown, token?: CancellationToken) =>
			(token
				? connection.sendRequest(method, params, token)
				: connection.sendRequest(method, params)) as Promise<R>,
		sendNotification: (method, params) => connection.sendNotification(method, params),
		onNotification: (method, handler) => connection.onNotification(method, handler),
	};
}
