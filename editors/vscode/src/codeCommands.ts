/**
 * What a person asks about their code: chat and explain on a selection, Fix (shown as a
 * diff first, ./fix.ts), and the context sent for the cursor. Kept apart from the
 * connection (./extension.ts starts, restarts and configures the server): these only need
 * a running client, the log and the chat deltas, which the host gives.
 */
import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import * as vscode from 'vscode';
import type { LanguageClient, Range } from 'vscode-languageclient/node';
import { ChatPanel } from './chatPanel';
import { CONTEXT_SCHEME, ContextDocuments } from './contextDocuments';
import { APPLY, CHANGED_WARNING, DISCARD, FIX_SCHEME, FixPreviews, proposeFix } from './fix';
import { actionEdit, explainArguments, findAction, rangeOrLine, requestActions } from './protocol/actions';
import { type ChatArguments, ChatDeltas, Conversation } from './protocol/chat';
import { rangeLabel } from './protocol/chatView';
import { contextInvocation, parseContext, renderContext } from './protocol/context';
import { describeError, isCancellation } from './protocol/errors';
import type { Rpc } from './protocol/rpc';
import { serverCommand, type ServerSettings } from './protocol/settings';

export type ChatRequest = Omit<ChatArguments, 'token'>;

const EXPLAIN_QUESTION = 'Explain this code';

/** What the commands need from the connection. */
export interface Host {
	readonly output: vscode.LogOutputChannel;
	readonly deltas: ChatDeltas;
	/** The client, running or not (for its converters). */
	client(): LanguageClient | undefined;
	/** The running client and its RPC, or undefined after telling the person it is not running. */
	running(): { client: LanguageClient; rpc: Rpc } | undefined;
	serverSettings(): ServerSettings;
	setting(name: string): unknown;
}

export class CodeCommands {
	private chat: ChatPanel | undefined;
	private readonly contexts = new ContextDocuments();
	private readonly fixes = new FixPreviews();

	constructor(private readonly host: Host) {}

	/** Stops a chat answer in flight (the server is going away). */
	cancelChat(): void {
		this.chat?.cancel();
	}

	/** The commands and read-only document schemes, for the extension's subscriptions. */
	register(): vscode.Disposable[] {
		return [
			vscode.workspace.registerTextDocumentContentProvider(CONTEXT_SCHEME, this.contexts),
			vscode.workspace.registerTextDocumentContentProvider(FIX_SCHEME, this.fixes),
			vscode.commands.registerCommand('tandem.chatAboutSelection', () => this.chatAboutSelection()),
			vscode.commands.registerCommand('tandem.explainSelection', () => this.explainSelection()),
			vscode.commands.registerCommand('tandem.fixSelection', (target?: unknown) => this.fixSelection(target)),
			vscode.commands.registerCommand('tandem.applyFix', (uri?: unknown) => this.fixes.answer(APPLY, uri)),
			vscode.commands.registerCommand('tandem.discardFix', (uri?: unknown) => this.fixes.answer(DISCARD, uri)),
			vscode.commands.registerCommand('tandem.showContext', () => this.showContext()),
		];
	}

	/** The active editor's selection (or the cursor's line) as an LSP uri and range. */
	private selection(): { editor: vscode.TextEditor; uri: string; range: Range } | undefined {
		const editor = vscode.window.activeTextEditor;
		const client = this.host.client();
		if (!editor || !client) {
			void vscode.window.showInformationMessage('Tandem: open a file and select some code first.');
			return undefined;
		}
		const c2p = client.code2ProtocolConverter;
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
		const server = picked && this.host.running();
		if (!picked || !server) {
			return;
		}
		const range = picked.range;
		let args: ChatRequest = { uri: picked.uri, range, question: EXPLAIN_QUESTION };
		try {
			const offered = await requestActions(server.rpc, picked.uri, range, 'explain');
			args = explainArguments(findAction(offered, 'explain')) ?? args;
		} catch (error) {
			this.host.output.warn(`code actions: ${describeError(error)}`);
		}
		await this.openChat(args, 'Tandem: Explain');
	}

	async openChat(args: ChatRequest, title: string): Promise<void> {
		const server = this.host.running();
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
		await this.chat.begin(`${title} — ${where}`, conversation, args.question, server.rpc, this.host.deltas);
	}

	/**
	 * Fix the selection (or `target`, from the light bulb): the server's edit is shown as a
	 * diff and applied only on "Apply" (./fix.ts).
	 */
	private async fixSelection(target?: unknown): Promise<void> {
		const picked = this.selection();
		const server = picked && this.host.running();
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
	async codeActions(
		document: vscode.TextDocument,
		range: vscode.Range,
		actions: Array<vscode.Command | vscode.CodeAction> | null | undefined,
	): Promise<Array<vscode.Command | vscode.CodeAction> | null | undefined> {
		const c2p = this.host.client()?.code2ProtocolConverter;
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

	private async showContext(): Promise<void> {
		const editor = vscode.window.activeTextEditor;
		if (!editor || editor.document.uri.scheme !== 'file') {
			void vscode.window.showInformationMessage('Tandem: open a saved file to see the context for the cursor.');
			return;
		}
		const document = editor.document;
		const position = editor.selection.active;
		const folder = vscode.workspace.getWorkspaceFolder(document.uri)?.uri.fsPath;
		const { command } = serverCommand((name) => this.host.setting(name), { home: homedir(), workspaceFolder: folder });
		const invocation = contextInvocation({
			bin: command,
			path: document.uri.fsPath,
			line: position.line,
			character: position.character,
			lineText: document.lineAt(position.line).text,
			root: folder,
			settings: this.host.serverSettings(),
		});
		const location = `${vscode.workspace.asRelativePath(document.uri)}:${position.line + 1}:${position.character + 1}`;
		if (document.isDirty) {
			this.host.output.info(`context for ${location}: tandem reads the saved file, not unsaved changes`);
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
}

/** The light bulb's Fix: runs the command (with the diff) instead of carrying an edit. */
export class FixPreviewAction extends vscode.CodeAction {}

/** `tandem.fixSelection`'s argument from the light bulb: an LSP uri and range. */
function fixTarget(value: unknown): { uri: string; range: Range } | undefined {
	const target = value as { uri?: unknown; range?: { start?: unknown; end?: unknown } } | undefined;
	if (!target || typeof target.uri !== 'string' || !target.range?.start || !target.range.end) {
		return undefined;
	}
	return { uri: target.uri, range: target.range as Range };
}
