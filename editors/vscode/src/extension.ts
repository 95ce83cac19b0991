/**
 * The Tandem extension: starts `tandem serve` and speaks only LSP to it.
 *
 * Everything that does not need VS Code (request building, chat stream assembly,
 * status mapping, settings → server settings) lives in ./protocol and is tested in
 * Node against the real server; this file wires it to the editor.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import {
	DidChangeConfigurationNotification,
	LanguageClient,
	State,
	type LanguageClientOptions,
	type ServerOptions,
} from 'vscode-languageclient/node';
import { CodeCommands, FixPreviewAction } from './codeCommands';
import { chatArgumentsOf } from './protocol/actions';
import { ChatDeltas } from './protocol/chat';
import { describeError, isCancellation } from './protocol/errors';
import { requestInline } from './protocol/inline';
import { CHAT_COMMAND, STATUS, rpcOf, type Rpc } from './protocol/rpc';
import {
	RESTART_SETTINGS,
	SECRET_KEYS,
	chatHasOwnProvider,
	languageEnabled,
	redactText,
	redacted,
	serverCommand,
	serverSettings,
	type Secrets,
	type Section,
	type ServerSettings,
} from './protocol/settings';
import { parseStatus, statusView, type Status } from './protocol/status';

let tandem: Tandem | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
	tandem = new Tandem(context);
	await tandem.activate();
}

export async function deactivate(): Promise<void> {
	await tandem?.stop();
	tandem = undefined;
}

/** Why `command` cannot be run (spawn would fail with ENOENT/EACCES), or undefined. */
function missingExecutable(command: string, cwd: string | undefined): string | undefined {
	const runnable = (path: string): boolean => {
		try {
			accessSync(path, constants.X_OK);
			return statSync(path).isFile();
		} catch {
			return false;
		}
	};
	if (isAbsolute(command) || command.includes('/') || command.includes('\\')) {
		const path = resolve(cwd ?? process.cwd(), command);
		return runnable(path) ? undefined : `${path} is not an executable file (set tandem.path)`;
	}
	const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
	const extensions = process.platform === 'win32' ? ['', '.exe', '.cmd', '.bat'] : [''];
	const found = dirs.some((dir) => extensions.some((ext) => runnable(join(dir, command + ext))));
	return found ? undefined : `${command} is not on PATH (set tandem.path to the tandem executable)`;
}

function setting(name: string): unknown {
	return vscode.workspace.getConfiguration('tandem').get(name);
}

const LOG_METHODS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'append', 'appendLine', 'replace']);

/** The output channel with API keys masked in everything written to it (see redactText). */
function redacting(channel: vscode.LogOutputChannel, secrets: () => Secrets): vscode.LogOutputChannel {
	const clean = (value: unknown): unknown => (typeof value === 'string' ? redactText(value, secrets()) : value);
	return new Proxy(channel, {
		get(target, property) {
			const value: unknown = Reflect.get(target, property);
			if (typeof value !== 'function') {
				return value;
			}
			if (typeof property === 'string' && LOG_METHODS.has(property)) {
				return (...args: unknown[]) => value.apply(target, args.map(clean));
			}
			return value.bind(target);
		},
	});
}

class Tandem {
	private client: LanguageClient | undefined;
	private readonly output = redacting(vscode.window.createOutputChannel('Tandem', { log: true }), () => this.secrets);
	private readonly statusItem = vscode.window.createStatusBarItem(
		'tandem.status',
		vscode.StatusBarAlignment.Right,
		100,
	);
	private readonly deltas = new ChatDeltas();
	private secrets: Secrets = {};
	private readonly commands = new CodeCommands({
		output: this.output,
		deltas: this.deltas,
		client: () => this.client,
		running: () => this.running(),
		serverSettings: () => this.serverSettings(),
		setting,
	});

	constructor(private readonly context: vscode.ExtensionContext) {}

	async activate(): Promise<void> {
		const { subscriptions } = this.context;
		this.statusItem.name = 'Tandem';
		this.statusItem.command = 'tandem.showOutput';
		this.showStatus({ state: 'starting', message: '' });
		this.statusItem.show();
		subscriptions.push(
			this.output,
			this.statusItem,
			...this.commands.register(),
			vscode.commands.registerCommand('tandem.restartServer', () => this.restart()),
			vscode.commands.registerCommand('tandem.setApiKey', () => this.setApiKey()),
			vscode.commands.registerCommand('tandem.showOutput', () => this.output.show()),
			vscode.workspace.onDidChangeConfiguration((event) => this.configurationChanged(event)),
			this.context.secrets.onDidChange((event) => this.secretChanged(event.key)),
		);
		await this.loadSecrets();
		await this.start();
	}

	// ---- the server ------------------------------------------------------------------------

	private serverSettings(): ServerSettings {
		return serverSettings(setting, this.secrets);
	}

	private async loadSecrets(): Promise<void> {
		const secrets: Secrets = {};
		for (const section of Object.keys(SECRET_KEYS) as Section[]) {
			secrets[section] = await this.context.secrets.get(SECRET_KEYS[section]);
		}
		this.secrets = secrets;
	}

	private async start(): Promise<void> {
		const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
		const { command, args } = serverCommand(setting, { home: homedir(), workspaceFolder: folder });
		const serverOptions: ServerOptions = { command, args, options: { cwd: folder } };
		const clientOptions: LanguageClientOptions = {
			documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
			outputChannel: this.output,
			initializationOptions: () => this.serverSettings(),
			middleware: {
				provideInlineCompletionItems: (document, position, context, token) =>
					this.inlineCompletions(document, position, context, token),
				provideCodeActions: async (document, range, context, token, next) =>
					this.commands.codeActions(document, range, await next(document, range, context, token)),
				// Nothing to resolve: the command asks the server when it runs.
				resolveCodeAction: (item, token, next) => (item instanceof FixPreviewAction ? item : next(item, token)),
				executeCommand: async (name, commandArgs, next) => {
					const chatArgs = name === CHAT_COMMAND ? chatArgumentsOf(commandArgs) : undefined;
					if (chatArgs) {
						// Explain's command from the light bulb: show it streaming in the panel.
						return this.commands.openChat(chatArgs, 'Tandem: Explain');
					}
					return next(name, commandArgs);
				},
			},
		};
		const client = new LanguageClient('tandem', 'Tandem', serverOptions, clientOptions);
		this.client = client;
		client.onNotification(STATUS, (params: unknown) => this.showStatus(parseStatus(params)));
		this.deltas.attach(rpcOf(client));
		client.onDidChangeState((event) => {
			if (event.newState === State.Starting) {
				this.showStatus({ state: 'starting', message: `${command} ${args.join(' ')}` });
			} else if (event.newState === State.Stopped) {
				this.showStatus({ state: 'stopped', message: 'the server is not running' });
			}
		});
		this.output.info(`starting ${command} ${args.join(' ')}`);
		this.output.info(`settings: ${JSON.stringify(redacted(this.serverSettings()))}`);
		// A missing executable is the usual failure: say so with a way to fix it, and do not
		// start the client, whose own start failure shows a second, generic notification.
		const missing = missingExecutable(command, folder);
		if (missing) {
			const message = `Tandem: cannot start the server (${command}): ${missing}`;
			this.output.error(message);
			this.showStatus({ state: 'stopped', message });
			// Not awaited: activation must not wait for the user to read it.
			void vscode.window.showErrorMessage(message, 'Open Settings', 'Show Log').then((choice) => {
				if (choice === 'Open Settings') {
					void vscode.commands.executeCommand('workbench.action.openSettings', 'tandem.path');
				} else if (choice === 'Show Log') {
					this.output.show();
				}
			});
			return;
		}
		try {
			await client.start();
		} catch (error) {
			// The client has already shown its own notification (always, "couldn't create
			// connection to server"): a second one would say the same twice.
			const message = `Tandem: cannot start the server (${command}): ${describeError(error)}`;
			this.output.error(message);
			this.showStatus({ state: 'stopped', message });
		}
	}

	async stop(): Promise<void> {
		const client = this.client;
		this.client = undefined;
		this.commands.cancelChat();
		if (client) {
			try {
				await client.dispose(5000);
			} catch (error) {
				this.output.warn(`stopping the server: ${describeError(error)}`);
			}
		}
	}

	private async restart(): Promise<void> {
		await this.stop();
		await this.start();
	}

	private running(): { client: LanguageClient; rpc: Rpc } | undefined {
		const client = this.client;
		if (!client || !client.isRunning()) {
			void vscode.window.showWarningMessage('Tandem: the server is not running.', 'Restart').then(
				(choice) => choice && this.restart(),
			);
			return undefined;
		}
		return { client, rpc: rpcOf(client) };
	}

	private showStatus(status: Status): void {
		const view = statusView(status);
		this.statusItem.text = view.text;
		this.statusItem.tooltip = view.tooltip;
		this.statusItem.backgroundColor = view.background ? new vscode.ThemeColor(view.background) : undefined;
	}

	private async configurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
		if (!event.affectsConfiguration('tandem')) {
			return;
		}
		if (RESTART_SETTINGS.some((name) => event.affectsConfiguration(`tandem.${name}`))) {
			await this.restart();
			return;
		}
		await this.sendSettings();
	}

	private async secretChanged(key: string): Promise<void> {
		if (!Object.values(SECRET_KEYS).includes(key)) {
			return;
		}
		await this.loadSecrets();
		await this.sendSettings();
	}

	/** The whole settings object again: the server rebuilds its model clients from it. */
	private async sendSettings(): Promise<void> {
		const client = this.client;
		if (!client || !client.isRunning()) {
			return;
		}
		const settings = this.serverSettings();
		this.output.info(`settings changed: ${JSON.stringify(redacted(settings))}`);
		await client.sendNotification(DidChangeConfigurationNotification.type, { settings });
	}

	// ---- inline completions ----------------------------------------------------------------

	private async inlineCompletions(
		document: vscode.TextDocument,
		position: vscode.Position,
		context: vscode.InlineCompletionContext,
		token: vscode.CancellationToken,
	): Promise<vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined> {
		const client = this.client;
		if (!client?.isRunning() || !languageEnabled(setting('enable'), document.languageId)) {
			return null;
		}
		const c2p = client.code2ProtocolConverter;
		const selected = context.selectedCompletionInfo;
		try {
			const result = await requestInline(
				rpcOf(client),
				{
					uri: c2p.asUri(document.uri),
					position: c2p.asPosition(position),
					trigger: context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke ? 'invoked' : 'automatic',
					selected: selected ? { range: c2p.asRange(selected.range), text: selected.text } : undefined,
				},
				token,
			);
			if (token.isCancellationRequested) {
				return null;
			}
			// The items keep the server's command: VS Code runs tandem.acceptCompletion on accept.
			return await client.protocol2CodeConverter.asInlineCompletionResult(result, token);
		} catch (error) {
			if (!isCancellation(error)) {
				this.output.warn(`inline completion: ${describeError(error)}`);
			}
			return null;
		}
	}

	// ---- the API key ---------------------------------------------------------------------------

	private async setApiKey(): Promise<void> {
		let section: Section = 'completion';
		if (chatHasOwnProvider(setting)) {
			const picked = await vscode.window.showQuickPick(
				[
					{ label: 'Completion model', section: 'completion' as Section },
					{ label: 'Chat model', description: 'tandem.chat.provider differs', section: 'chat' as Section },
				],
				{ title: 'Tandem: Set API key', placeHolder: 'Which model is the key for?' },
			);
			if (!picked) {
				return;
			}
			section = picked.section;
		}
		const key = await vscode.window.showInputBox({
			title: `Tandem: API key for the ${section} model`,
			prompt: "Kept in VS Code's secret storage and sent only to the Tandem server. Leave empty to remove it.",
			password: true,
			ignoreFocusOut: true,
		});
		if (key === undefined) {
			return;
		}
		if (key.trim()) {
			await this.context.secrets.store(SECRET_KEYS[section], key.trim());
			void vscode.window.showInformationMessage(`Tandem: API key for the ${section} model saved.`);
		} else {
			await this.context.secrets.delete(SECRET_KEYS[section]);
			void vscode.window.showInformationMessage(`Tandem: API key for the ${section} model removed.`);
		}
	}
}
