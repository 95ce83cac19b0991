/**
 * The chat webview: the transcript of one conversation, streamed as the server's deltas
 * arrive and redrawn at most every 40 ms. Kept apart from the extension's wiring: it knows
 * the panel and a Conversation, not the language client.
 */
import * as vscode from 'vscode';
import { ChatDeltas, Conversation } from './protocol/chat';
import { chatPage, renderTranscript, type FromPanel, type ToPanel, type TranscriptTurn } from './protocol/chatView';
import { describeError, isCancellation } from './protocol/errors';
import type { Rpc } from './protocol/rpc';

/** The chat webview: one conversation at a time, follow-ups keep its history. */
export class ChatPanel {
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
