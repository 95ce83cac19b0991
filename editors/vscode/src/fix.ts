/**
 * Fix, the way Copilot shows an edit: the server's WorkspaceEdit is first shown as a diff
 * between the document and a read-only copy with the edit applied, and written into the
 * document only when the person clicks "Apply".
 *
 * The question is a non-modal notification on purpose: a modal dialog would block the
 * workbench, so the diff behind it could not be scrolled or read past its first screen
 * (code-server and desktop VS Code alike). As VS Code hides an information toast after a
 * while, the diff editor's title bar carries the same two buttons (tandem.applyFix,
 * tandem.discardFix); closing the toast or the diff editor is "Discard".
 */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { Range, TextEdit, WorkspaceEdit } from 'vscode-languageclient/node';
import { editOutside, textEdits } from './protocol/actions';

export const FIX_SCHEME = 'tandem-fix';
export const APPLY = 'Apply';
export const DISCARD = 'Discard';
export const CHANGED_WARNING = 'Tandem: the document changed while fixing; the fix was not applied.';

export interface Proposal {
	document: vscode.TextDocument;
	/** The document's version the server's edit was made for. */
	version: number;
	/** The LSP uri and range the fix was asked for (the selection). */
	uri: string;
	range: Range;
	edit: WorkspaceEdit;
	/** The language client's conversion to a VS Code WorkspaceEdit. */
	toCode(edit: WorkspaceEdit): Promise<vscode.WorkspaceEdit>;
}

export type Outcome = 'applied' | 'discarded' | 'changed' | 'refused' | 'unchanged';

type Decision = typeof APPLY | typeof DISCARD;

/**
 * The fixes on screen: their proposed texts (read-only documents, nothing is written to
 * disk) and the decisions still open, one per diff editor.
 */
export class FixPreviews implements vscode.TextDocumentContentProvider {
	private readonly texts = new Map<string, string>();
	private readonly pending = new Map<string, (decision: Decision) => void>();
	private count = 0;

	put(document: vscode.Uri, text: string): vscode.Uri {
		this.count += 1;
		// The document's own path, so the copy gets its language (and highlighting); the
		// query keeps every proposal its own document (VS Code caches one per URI).
		const uri = vscode.Uri.from({ scheme: FIX_SCHEME, path: document.path, query: `fix=${this.count}` });
		this.texts.set(uri.toString(), text);
		return uri;
	}

	drop(uri: vscode.Uri): void {
		this.texts.delete(uri.toString());
		this.pending.delete(uri.toString());
	}

	provideTextDocumentContent(uri: vscode.Uri): string {
		return this.texts.get(uri.toString()) ?? '';
	}

	/** The first of: a button of the notification, a button of the diff editor's title, the diff closed. */
	decide(right: vscode.Uri, question: string): Promise<Decision> {
		return new Promise<Decision>((resolve) => {
			const key = right.toString();
			const closed = vscode.window.tabGroups.onDidChangeTabs((event) => {
				if (event.closed.some((tab) => isDiffOf(tab, right))) {
					settle(DISCARD);
				}
			});
			const settle = (decision: Decision): void => {
				if (this.pending.get(key) === settle) {
					this.pending.delete(key);
					closed.dispose();
					resolve(decision);
				}
			};
			this.pending.set(key, settle);
			// Not sticky in VS Code: the toast may slide into the notification centre after a
			// while; the diff editor's title buttons stay. Closing the toast is Discard.
			void vscode.window.showInformationMessage(question, APPLY, DISCARD).then((choice) =>
				settle(choice === APPLY ? APPLY : DISCARD),
			);
		});
	}

	/** "Apply fix" / "Discard fix" from the diff editor's title (`uri`: its right side). */
	answer(decision: Decision, uri?: unknown): void {
		const wanted = uri instanceof vscode.Uri ? uri.toString() : undefined;
		const active = vscode.window.activeTextEditor?.document.uri.toString();
		const key = [wanted, active].find((k) => k !== undefined && this.pending.has(k))
			?? (this.pending.size === 1 ? [...this.pending.keys()][0] : undefined);
		if (key === undefined) {
			void vscode.window.showInformationMessage('Tandem: no proposed fix is waiting for an answer.');
			return;
		}
		this.pending.get(key)!(decision);
	}
}

function isDiffOf(tab: vscode.Tab, right: vscode.Uri): boolean {
	return tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.toString() === right.toString();
}

/** The document's text with `edits` applied, at the document's own offsets. */
function applied(document: vscode.TextDocument, edits: readonly TextEdit[]): string {
	const text = document.getText();
	const located = edits
		.map((e) => ({
			start: document.offsetAt(new vscode.Position(e.range.start.line, e.range.start.character)),
			end: document.offsetAt(new vscode.Position(e.range.end.line, e.range.end.character)),
			text: e.newText,
		}))
		.sort((a, b) => b.start - a.start || b.end - a.end);
	let out = text;
	for (const e of located) {
		out = out.slice(0, e.start) + e.text + out.slice(e.end);
	}
	return out;
}

async function closeDiff(right: vscode.Uri): Promise<void> {
	const tabs = vscode.window.tabGroups.all.flatMap((group) => group.tabs.filter((tab) => isDiffOf(tab, right)));
	if (tabs.length) {
		await vscode.window.tabGroups.close(tabs);
	}
}

/** Show the fix as a diff, ask, and apply it (one undo step) only on "Apply". */
export async function proposeFix(previews: FixPreviews, fix: Proposal): Promise<Outcome> {
	const { document } = fix;
	const outside = editOutside(fix.edit, fix.uri, fix.range);
	if (outside) {
		void vscode.window.showErrorMessage(`Tandem: the fix was refused: ${outside}. Nothing was changed.`);
		return 'refused';
	}
	const proposed = applied(document, textEdits(fix.edit).get(fix.uri) ?? []);
	if (proposed === document.getText()) {
		void vscode.window.showInformationMessage('Tandem: the model proposes no change to the selection.');
		return 'unchanged';
	}
	const name = document.isUntitled ? document.uri.path : basename(document.uri.fsPath || document.uri.path);
	const right = previews.put(document.uri, proposed);
	try {
		await vscode.commands.executeCommand('vscode.diff', document.uri, right, `Tandem fix: ${name} (proposed)`, {
			preview: false,
		});
		const first = fix.range.start.line + 1;
		const last = Math.max(first, fix.range.end.line + (fix.range.end.character > 0 ? 1 : 0));
		const lines = first === last ? `${first}` : `${first}-${last}`;
		const decision = await previews.decide(right, `Tandem: apply the proposed fix to ${name}:${lines}?`);
		if (decision !== APPLY) {
			return 'discarded';
		}
		if (document.version !== fix.version) {
			void vscode.window.showWarningMessage(CHANGED_WARNING);
			return 'changed';
		}
		// One workspace edit: a single undo step (Ctrl+Z) takes it back.
		if (!(await vscode.workspace.applyEdit(await fix.toCode(fix.edit)))) {
			void vscode.window.showWarningMessage('Tandem: VS Code refused the fix (the document changed?).');
			return 'changed';
		}
		return 'applied';
	} finally {
		previews.drop(right);
		await closeDiff(right);
	}
}
