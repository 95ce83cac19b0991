/**
 * Fix, the way Copilot shows an edit: the server's WorkspaceEdit is first shown as a diff
 * between the document and a read-only copy with the edit applied, and written into the
 * document only when the person clicks "Apply".
 *
 * The question is a non-modal notification on purpose: a modal dialog would block the
 * workbench, so the diff behind it could not be scrolled or read past its first screen
 * (code-server and desktop VS Code alike). Dismissing the notification is "Discard".
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

/** The proposed texts, one per shown fix, read-only (nothing is written to disk). */
export class FixPreviews implements vscode.TextDocumentContentProvider {
	private readonly texts = new Map<string, string>();
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
	}

	provideTextDocumentContent(uri: vscode.Uri): string {
		return this.texts.get(uri.toString()) ?? '';
	}
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
	const tabs = vscode.window.tabGroups.all.flatMap((group) =>
		group.tabs.filter((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.toString() === right.toString()),
	);
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
		const choice = await vscode.window.showInformationMessage(
			`Tandem: apply the proposed fix to ${name}:${lines}?`,
			APPLY,
			DISCARD,
		);
		if (choice !== APPLY) {
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
		await closeDiff(right);
		previews.drop(right);
	}
}
