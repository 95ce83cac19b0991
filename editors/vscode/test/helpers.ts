/**
 * The real parts the Node tests run against: `tandem serve` over stdio, the project's
 * loopback model server (tests/modelserver.py), and a recording HTTP proxy between
 * them so a test can see what reached the model (headers, bodies).
 *
 * TANDEM_BIN and TANDEM_PYTHON name the executable and the Python to run the model
 * server with (default: the project's .venv, ../../.venv relative to editors/vscode).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
	createMessageConnection,
	StreamMessageReader,
	StreamMessageWriter,
	type MessageConnection,
} from 'vscode-jsonrpc/node';
import type { ClientCapabilities, InitializeResult } from 'vscode-languageserver-protocol';
import { STATUS, rpcOf, type Rpc } from '../src/protocol/rpc';
import { parseStatus, type Status } from '../src/protocol/status';

export const EXTENSION_DIR = resolve(__dirname, '..');
export const PROJECT_DIR = resolve(EXTENSION_DIR, '..', '..');
export const TANDEM_BIN = process.env.TANDEM_BIN || join(PROJECT_DIR, '.venv', 'bin', 'tandem');
export const TANDEM_PYTHON = process.env.TANDEM_PYTHON || join(PROJECT_DIR, '.venv', 'bin', 'python');
export const MODEL_SERVER = join(PROJECT_DIR, 'tests', 'modelserver.py');
/** What tests/modelserver.py streams by default, in four pieces. */
export const DEFAULT_ANSWER = 'Hello, world!';
export const MODEL = 'qwen2.5-coder';

export function fileUri(path: string): string {
	return pathToFileURL(path).href;
}

const exitTasks = new Set<() => void>();

/**
 * Run `task` when this test process ends, even when it ends without its `after` hooks
 * (killed by the test runner, or by a signal): no model server or temporary folder
 * outlives it. Returns a function that cancels the task.
 */
export function atExit(task: () => void): () => void {
	if (exitTasks.size === 0 && !atExit.installed) {
		atExit.installed = true;
		const runAll = (): void => {
			for (const t of [...exitTasks]) {
				exitTasks.delete(t);
				try {
					t();
				} catch {
					// best effort
				}
			}
		};
		process.once('exit', runAll);
		for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
			process.once(signal, () => {
				runAll();
				process.exit(128 + (constants.signals[signal] ?? 15));
			});
		}
	}
	exitTasks.add(task);
	return () => {
		exitTasks.delete(task);
	};
}
atExit.installed = false;

export async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
	const { port } = server.address() as AddressInfo;
	await new Promise<void>((done) => server.close(() => done()));
	return port;
}

export async function waitFor<T>(
	what: string,
	check: () => T | undefined | false,
	timeoutMs = 10_000,
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = check();
		if (value) {
			return value;
		}
		if (Date.now() > deadline) {
			throw new Error(`timed out waiting for ${what}`);
		}
		await new Promise((done) => setTimeout(done, 20));
	}
}

// ---- the model server ------------------------------------------------------------------------

export interface ModelServer {
	url: string;
	port: number;
	stop(): Promise<void>;
}

/** `python tests/modelserver.py --port N`, ready when it prints "serving on". */
export async function startModelServer(port?: number): Promise<ModelServer> {
	const chosen = port ?? (await freePort());
	const child = spawn(TANDEM_PYTHON, [MODEL_SERVER, '--port', String(chosen)], {
		stdio: ['ignore', 'pipe', 'pipe'],
		env: cleanEnv(),
	});
	child.once('exit', atExit(() => child.kill('SIGKILL')));
	let output = '';
	await new Promise<void>((done, fail) => {
		const timer = setTimeout(() => fail(new Error(`the model server did not start: ${output}`)), 15_000);
		const read = (chunk: Buffer): void => {
			output += chunk.toString();
			if (output.includes('serving on')) {
				clearTimeout(timer);
				done();
			}
		};
		child.stdout!.on('data', read);
		child.stderr!.on('data', read);
		child.on('exit', (code) => {
			clearTimeout(timer);
			fail(new Error(`the model server exited (${code}): ${output}`));
		});
	});
	return { url: `http://127.0.0.1:${chosen}`, port: chosen, stop: () => stopProcess(child) };
}

async function stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) {
		return;
	}
	const exited = new Promise<void>((done) => child.once('exit', () => done()));
	child.kill('SIGTERM');
	const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
	await exited;
	clearTimeout(timer);
}

// ---- a recording proxy in front of it --------------------------------------------------------

export interface Seen {
	method: string;
	path: string;
	headers: IncomingHttpHeaders;
	body: any;
}

export interface Proxy {
	url: string;
	seen: Seen[];
	stop(): Promise<void>;
}

/** Forwards every request to `target` (streaming the answer through) and records it. */
export async function startProxy(target: string): Promise<Proxy> {
	const seen: Seen[] = [];
	const upstream = new URL(target);
	const server: Server = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (chunk: Buffer) => chunks.push(chunk));
		req.on('end', () => {
			const raw = Buffer.concat(chunks);
			let body: unknown = raw.toString();
			try {
				body = JSON.parse(raw.toString());
			} catch {
				// not JSON: keep the text
			}
			seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
			const forward = httpRequest(
				{
					host: upstream.hostname,
					port: upstream.port,
					method: req.method,
					path: req.url,
					headers: { ...req.headers, host: upstream.host },
				},
				(answer) => {
					res.writeHead(answer.statusCode ?? 502, answer.headers);
					answer.pipe(res);
				},
			);
			forward.on('error', () => res.destroy());
			res.on('close', () => forward.destroy());
			forward.end(raw);
		});
	});
	await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}`,
		seen,
		stop: () =>
			new Promise<void>((done) => {
				server.closeAllConnections();
				server.close(() => done());
			}),
	};
}

// ---- tandem serve ------------------------------------------------------------------------------

/** The environment minus the developer's own TANDEM_* settings, proxies, config and cache. */
export function cleanEnv(extra: Record<string, string> = {}, home?: string): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = {};
	for (const [name, value] of Object.entries(process.env)) {
		if (name.startsWith('TANDEM_') || /^(https?|all)_proxy$/i.test(name)) {
			continue;
		}
		env[name] = value;
	}
	if (home) {
		env.XDG_CONFIG_HOME = join(home, 'xdg-config');
		env.XDG_CACHE_HOME = join(home, 'xdg-cache');
	}
	return { ...env, ...extra };
}

export function modelEnv(endpoint: string): Record<string, string> {
	return { TANDEM_PROVIDER: 'openai', TANDEM_ENDPOINT: `${endpoint}/v1`, TANDEM_MODEL: MODEL };
}

/** A temporary folder: `ws/` is the workspace, the rest holds config and cache. */
export function tempHome(): { home: string; ws: string; cleanup(): void } {
	const home = mkdtempSync(join(tmpdir(), 'tandem-vscode-'));
	const ws = join(home, 'ws');
	mkdirSync(ws);
	const remove = (): void => rmSync(home, { recursive: true, force: true });
	const forget = atExit(remove);
	return {
		home,
		ws,
		cleanup: () => {
			forget();
			remove();
		},
	};
}

export function writeFile(path: string, text: string): string {
	mkdirSync(dirname(path), { recursive: true });
	writeFileSync(path, text);
	return path;
}

/** The parts of VS Code's client capabilities that change what Tandem answers. */
export const VSCODE_CAPABILITIES: ClientCapabilities = {
	general: { positionEncodings: ['utf-16'] },
	workspace: {
		applyEdit: true,
		workspaceEdit: {
			documentChanges: true,
			resourceOperations: ['create', 'rename', 'delete'],
			failureHandling: 'textOnlyTransactional',
		},
		didChangeConfiguration: { dynamicRegistration: true },
		executeCommand: { dynamicRegistration: true },
		workspaceFolders: true,
	},
	textDocument: {
		synchronization: { dynamicRegistration: true, didSave: true },
		inlineCompletion: { dynamicRegistration: true },
		codeAction: {
			dynamicRegistration: true,
			isPreferredSupport: true,
			dataSupport: true,
			resolveSupport: { properties: ['edit'] },
			codeActionLiteralSupport: {
				codeActionKind: {
					valueSet: ['', 'quickfix', 'refactor', 'refactor.extract', 'refactor.inline', 'refactor.rewrite', 'source', 'source.organizeImports'],
				},
			},
		},
	},
	window: { workDoneProgress: true },
};

export interface Served {
	connection: MessageConnection;
	rpc: Rpc;
	init: InitializeResult;
	statuses: Status[];
	stderr: () => string;
	/** The latest status in `state` after the first `since` ones. */
	waitStatus(state: Status['state'], since?: number, timeoutMs?: number): Promise<Status>;
	open(path: string, text: string, languageId?: string, version?: number): string;
	stop(): Promise<void>;
}

/**
 * `test` whose failures end with the tail of the server's stderr (its tracebacks), so a
 * failure in CI says what the server saw.
 */
export function testWithServerLog(served: () => Served | undefined) {
	return (name: string, body: () => Promise<void> | void): void => {
		test(name, async () => {
			try {
				await body();
			} catch (error) {
				const log = served()?.stderr().trim();
				if (log && error instanceof Error) {
					error.message += `\n--- tandem serve stderr (last lines) ---\n${log.split('\n').slice(-40).join('\n')}`;
				}
				throw error;
			}
		});
	};
}

/** `tandem serve` over stdio, initialized like VS Code initializes it. */
export async function startTandem(options: {
	root: string;
	env: NodeJS.ProcessEnv;
	initializationOptions?: unknown;
}): Promise<Served> {
	const child = spawn(TANDEM_BIN, ['serve'], { cwd: options.root, env: options.env, stdio: 'pipe' });
	child.once('exit', atExit(() => child.kill('SIGKILL')));
	let stderr = '';
	child.stderr!.on('data', (chunk: Buffer) => {
		stderr += chunk.toString();
	});
	const connection = createMessageConnection(
		new StreamMessageReader(child.stdout!),
		new StreamMessageWriter(child.stdin!),
	);
	const rpc = rpcOf(connection);
	const statuses: Status[] = [];
	connection.onNotification(STATUS, (params) => {
		statuses.push(parseStatus(params));
	});
	connection.onNotification('window/logMessage', () => undefined);
	connection.listen();
	const failed = new Promise<never>((_, fail) =>
		child.on('exit', (code) => fail(new Error(`tandem serve exited (${code}): ${stderr}`))),
	);
	failed.catch(() => undefined);
	const init = (await Promise.race([
		connection.sendRequest('initialize', {
			processId: process.pid,
			clientInfo: { name: 'Visual Studio Code', version: '1.91.0' },
			rootUri: fileUri(options.root),
			workspaceFolders: [{ uri: fileUri(options.root), name: 'ws' }],
			capabilities: VSCODE_CAPABILITIES,
			initializationOptions: options.initializationOptions ?? {},
		}),
		failed,
	])) as InitializeResult;
	await connection.sendNotification('initialized', {});
	let stopped = false;
	return {
		connection,
		rpc,
		init,
		statuses,
		stderr: () => stderr,
		waitStatus: (state, since = 0, timeoutMs = 10_000) =>
			waitFor(`status ${state} (seen: ${JSON.stringify(statuses)})`, () =>
				statuses.slice(since).reverse().find((s) => s.state === state),
				timeoutMs,
			),
		open(path, text, languageId = 'python', version = 1) {
			const uri = fileUri(path);
			void connection.sendNotification('textDocument/didOpen', {
				textDocument: { uri, languageId, version, text },
			});
			return uri;
		},
		async stop() {
			if (stopped) {
				return;
			}
			stopped = true;
			try {
				await Promise.race([
					connection.sendRequest('shutdown').then(() => connection.sendNotification('exit')),
					new Promise((done) => setTimeout(done, 5000)),
				]);
			} catch {
				// the process may be gone already
			}
			await stopProcess(child, 5000);
			connection.dispose();
		},
	};
}
