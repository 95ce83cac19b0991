/**
 * The Tandem extension: starts `tandem serve` and speaks only LSP to it.
 *
 * Everything that does not need VS Code (request building, chat stream assembly,
 * status mapping, settings → server settings) lives in ./protocol and is tested in
 * Node against the real server; this file wires it to the editor.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import {
	DidChangeConfigurationNotification,
	LanguageClient,
	State,
	type LanguageClientOptions,
	type Range,
	type ServerOptions,
} from 'vscode-languageclient/node';
import { actionEdit, chatArgumentsOf, explainArguments, findAction, rangeOrLine, requestActions } from './protocol/actions';
import { ChatDeltas, Conversation, type ChatArguments } from './protocol/chat';
import { chatPage, rangeLabel, renderTranscript, type FromPanel, type ToPanel, type TranscriptTurn } from './protocol/chatView';
import { contextInvocation, parseContext, renderContext } from './protocol/context';
import { APPLY, CHANGED_WARNING, DISCARD, FIX_SCHEME, FixPreviews, proposeFix } from './fix';
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

type ChatRequest = Omit<ChatArguments, 'token'>;

const EXPLAIN_QUESTION = 'Explain this code';
const CONTEXT_SCHEME = 'tandem-context';

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
	private chat: ChatPanel | undefined;
	private readonly contexts = new ContextDocuments();
	private readonly fixes = new FixPreviews();

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
			vscode.workspace.registerTextDocumentContentProvider(CONTEXT_SCHEME, this.contexts),
			vscode.workspace.registerTextDocumentContentProvider(FIX_SCHEME, this.fixes),
			vscode.commands.registerCommand('tandem.chatAboutSelection', () => this.chatAboutSelection()),
			vscode.commands.registerCommand('tandem.explainSelection', () => this.explainSelection()),
			vscode.commands.registerCommand('tandem.fixSelection', (target?: unknown) => this.fixSelection(target)),
			vscode.commands.registerCommand('tandem.applyFix', (uri?: unknown) => this.fixes.answer(APPLY, uri)),
			vscode.commands.registerCommand('tandem.discardFix', (uri?: unknown) => this.fixes.answer(DISCARD, uri)),
			vscode.commands.registerCommand('tandem.showContext', () => this.showContext()),
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
					this.codeActions(document, range, await next(document, range, context, token)),
				// Nothing to resolve: the command asks the server when it runs.
				resolveCodeAction: (item, token, next) => (item instanceof FixPreviewAction ? item : next(item, token)),
				executeCommand: async (name, commandArgs, next) => {
					const chatArgs = name === CHAT_COMMAND ? chatArgumentsOf(commandArgs) : undefined;
					if (chatArgs) {
						// Explain's command from the light bulb: show it streaming in the panel.
						return this.openChat(chatArgs, 'Tandem: Explain');
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
		this.chat?.cancel();
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

	// ---- chat, explain, fix ----------------------------------------------------------------

	/** The active editor's selection (or the cursor's line) as an LSP uri and range. */
	private selection(): { editor: vscode.TextEditor; uri: string; range: Range } | undefined {
		const editor = vscode.window.activeTextEditor;
		if (!editor || !this.client) {
			void vscode.window.showInformationMessage('Tandem: open a file and select some code first.');
			return undefined;
		}
		const c2p = this.client.code2ProtocolConverter;
		const selection = editor.selection;
		const lineLength = editor.document.lineAt(selection.active.line).text.length;
		return { editor, uri: c2p.asUri(editor.document.uri), range: rangeOrLine(c2p.asRange(selection), lineLength) };
	}

	private async chatAboutSelection(): Promise<void> {
		const picked = this.selection();
		if (!picked) {
			return;
		}
		const question = await vscode.window.showInputBox({
			title: 'Tandem: Chat about selection',
			prompt: 'Ask a question about the selected code',
			placeHolder: 'e.g. What does this do? Is there a bug?',
			ignoreFocusOut: true,
		});
		if (!question?.trim()) {
			return;
		}
		await this.openChat({ uri: picked.uri, range: picked.range, question: question.trim() }, 'Tandem: Chat');
	}

	private async explainSelection(): Promise<void> {
		const picked = this.selection();
		const server = picked && this.running();
		if (!picked || !server) {
			return;
		}
		const range = picked.range;
		let args: ChatRequest = { uri: picked.uri, range, question: EXPLAIN_QUESTION };
		try {
			const offered = await requestActions(server.rpc, picked.uri, range, 'explain');
			args = explainArguments(findAction(offered, 'explain')) ?? args;
		} catch (error) {
			this.output.warn(`code actions: ${describeError(error)}`);
		}
		await this.openChat(args, 'Tandem: Explain');
	}

	private async openChat(args: ChatRequest, title: string): Promise<void> {
		const server = this.running();
		if (!server) {
			return;
		}
		const range = args.range;
		const conversation = new Conversation(args.uri, range);
		conversation.turns.push(...(args.history ?? []));
		const where = rangeLabel(vscode.workspace.asRelativePath(vscode.Uri.parse(args.uri)), range);
		this.chat ??= new ChatPanel(() => {
			this.chat = undefined;
		});
		await this.chat.begin(`${title} — ${where}`, conversation, args.question, server.rpc, this.deltas);
	}

	/**
	 * Fix the selection (or `target`, from the light bulb): the server's edit is shown as a
	 * diff and applied only on "Apply" (./fix.ts).
	 */
	private async fixSelection(target?: unknown): Promise<void> {
		const picked = this.selection();
		const server = picked && this.running();
		if (!picked || !server) {
			return;
		}
		const { client, rpc } = server;
		const document = picked.editor.document;
		// From the light bulb: the range VS Code asked actions for, if it is in this document.
		const given = fixTarget(target);
		const range = given && given.uri === picked.uri ? given.range : picked.range;
		const version = document.version;
		try {
			const edit = await vscode.window.withProgress(
				{ location: vscode.ProgressLocation.Notification, title: 'Tandem: fixing the selection…', cancellable: true },
				(_progress, token) => actionEdit(rpc, picked.uri, range, 'fix', token),
			);
			if (!edit) {
				void vscode.window.showInformationMessage('Tandem: no fix offered here (select some code).');
				return;
			}
			if (document.version !== version) {
				void vscode.window.showWarningMessage(CHANGED_WARNING);
				return;
			}
			await proposeFix(this.fixes, {
				document,
				version,
				uri: picked.uri,
				range,
				edit,
				toCode: (e) => client.protocol2CodeConverter.asWorkspaceEdit(e),
			});
		} catch (error) {
			if (!isCancellation(error)) {
				void vscode.window.showErrorMessage(`Tandem: Fix failed: ${describeError(error)}`);
			}
		}
	}

	/**
	 * The server's Fix code action, as the light bulb offers it, runs `tandem.fixSelection`
	 * instead of carrying the edit: VS Code would otherwise apply the edit unseen.
	 */
	private async codeActions(
		document: vscode.TextDocument,
		range: vscode.Range,
		actions: Array<vscode.Command | vscode.CodeAction> | null | undefined,
	): Promise<Array<vscode.Command | vscode.CodeAction> | null | undefined> {
		const c2p = this.client?.code2ProtocolConverter;
		if (!actions || !c2p) {
			return actions;
		}
		return actions.map((action) => {
			const data = (action as { data?: { action?: unknown } }).data;
			if (!(action instanceof vscode.CodeAction) || data?.action !== 'fix') {
				return action;
			}
			const preview = new FixPreviewAction(action.title, action.kind);
			preview.isPreferred = action.isPreferred;
			preview.command = {
				command: 'tandem.fixSelection',
				title: action.title,
				arguments: [{ uri: c2p.asUri(document.uri), range: c2p.asRange(range) }],
			};
			return preview;
		});
	}

	// ---- context -----------------------------------------------------------------------------

	private async showContext(): Promise<void> {
		const editor = vscode.window.activeTextEditor;
		if (!editor || editor.document.uri.scheme !== 'file') {
			void vscode.window.showInformationMessage('Tandem: open a saved file to see the context for the cursor.');
			return;
		}
		const document = editor.document;
		const position = editor.selection.active;
		const folder = vscode.workspace.getWorkspaceFolder(document.uri)?.uri.fsPath;
		const { command } = serverCommand(setting, { home: homedir(), workspaceFolder: folder });
		const invocation = contextInvocation({
			bin: command,
			path: document.uri.fsPath,
			line: position.line,
			character: position.character,
			lineText: document.lineAt(position.line).text,
			root: folder,
			settings: this.serverSettings(),
		});
		const location = `${vscode.workspace.asRelativePath(document.uri)}:${position.line + 1}:${position.character + 1}`;
		if (document.isDirty) {
			this.output.info(`context for ${location}: tandem reads the saved file, not unsaved changes`);
		}
		try {
			const stdout = await new Promise<string>((resolve, reject) => {
				execFile(
					invocation.command,
					invocation.args,
					{ cwd: folder, env: { ...process.env, ...invocation.env }, maxBuffer: 32 * 1024 * 1024, timeout: 60_000 },
					(error, out, err) => (error ? reject(new Error(err.trim() || error.message)) : resolve(out)),
				);
			});
			let markdown = renderContext(parseContext(stdout), location);
			if (document.isDirty) {
				markdown = `> The file has unsaved changes: this is the context for the saved file.\n\n${markdown}`;
			}
			const uri = this.contexts.put(markdown);
			const shown = await vscode.workspace.openTextDocument(uri);
			await vscode.languages.setTextDocumentLanguage(shown, 'markdown');
			await vscode.window.showTextDocument(shown, { viewColumn: vscode.ViewColumn.Beside, preview: true });
		} catch (error) {
			void vscode.window.showErrorMessage(`Tandem: context failed: ${describeError(error)}`);
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

/** The chat webview: one conversation at a time, follow-ups keep its history. */
class ChatPanel {
	private readonly panel: vscode.WebviewPanel;
	private title = '';
	private conversation: Conversation | undefined;
	private turns: TranscriptTurn[] = [];
	private source: vscode.CancellationTokenSource | undefined;
	private rpc: Rpc | undefined;
	private deltas: ChatDeltas | undefined;
	private timer: ReturnType<typeof setTimeout> | undefined;

	constructor(onClose: () => void) {
		this.panel = vscode.window.createWebviewPanel(
			'tandem.chat',
			'Tandem Chat',
			{ viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
			{ enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [] },
		);
		const nonce = Array.from({ length: 32 }, () => Math.floor(Math.random() * 36).toString(36)).join('');
		this.panel.webview.html = chatPage({ nonce, cspSource: this.panel.webview.cspSource, html: '' });
		this.panel.webview.onDidReceiveMessage((message: FromPanel) => {
			if (message.type === 'ask') {
				void this.ask(message.question);
			} else if (message.type === 'stop') {
				this.cancel();
			} else if (message.type === 'ready') {
				this.render();
			}
		});
		this.panel.onDidDispose(() => {
			this.cancel();
			onClose();
		});
	}

	async begin(title: string, conversation: Conversation, question: string, rpc: Rpc, deltas: ChatDeltas): Promise<void> {
		this.cancel();
		this.title = title;
		this.conversation = conversation;
		this.turns = [];
		this.rpc = rpc;
		this.deltas = deltas;
		this.panel.title = title.split(' — ')[0];
		this.panel.reveal(vscode.ViewColumn.Beside, true);
		await this.ask(question);
	}

	cancel(): void {
		this.source?.cancel();
		this.source?.dispose();
		this.source = undefined;
	}

	private async ask(question: string): Promise<void> {
		const { conversation, rpc, deltas } = this;
		if (!conversation || !rpc || !deltas || this.source) {
			return;
		}
		const turn: TranscriptTurn = { question, answer: '', pending: true };
		this.turns.push(turn);
		const source = new vscode.CancellationTokenSource();
		this.source = source;
		this.render();
		try {
			await conversation.ask(
				rpc,
				deltas,
				question,
				(text) => {
					turn.answer = text;
					this.scheduleRender();
				},
				source.token,
			);
		} catch (error) {
			turn.error = isCancellation(error) || source.token.isCancellationRequested ? 'Stopped.' : describeError(error);
		} finally {
			turn.pending = false;
			if (this.source === source) {
				this.source.dispose();
				this.source = undefined;
			}
			this.render();
		}
	}

	private scheduleRender(): void {
		this.timer ??= setTimeout(() => {
			this.timer = undefined;
			this.render();
		}, 40);
	}

	private render(): void {
		if (this.timer) {
			clearTimeout(this.timer);
			this.timer = undefined;
		}
		const message: ToPanel = {
			type: 'render',
			html: renderTranscript(this.title, this.turns),
			busy: this.source !== undefined,
		};
		void this.panel.webview.postMessage(message);
	}
}

/** The light bulb's Fix: runs the command (with the diff) instead of carrying an edit. */
class FixPreviewAction extends vscode.CodeAction {}

/** `tandem.fixSelection`'s argument from the light bulb: an LSP uri and range. */
function fixTarget(value: unknown): { uri: string; range: Range } | undefined {
	const target = value as { uri?: unknown; range?: { start?: unknown; end?: unknown } } | undefined;
	if (!target || typeof target.uri !== 'string' || !target.range?.start || !target.range.end) {
		return undefined;
	}
	return { uri: target.uri, range: target.range as Range };
}

/** Read-only documents for "Show context sent" (nothing is written to disk). */
class ContextDocuments implements vscode.TextDocumentContentProvider {
	private readonly texts = new Map<string, string>();
	private count = 0;

	put(text: string): vscode.Uri {
		this.count += 1;
		const uri = vscode.Uri.from({ scheme: CONTEXT_SCHEME, path: `/Context sent ${this.count}.md` });
		this.texts.set(uri.toString(), text);
		return uri;
	}

	provideTextDocumentContent(uri: vscode.Uri): string {
		return this.texts.get(uri.toString()) ?? '';
	}
}
