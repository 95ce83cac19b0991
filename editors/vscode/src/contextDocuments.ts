/** "Show context sent": the rendered prompt opened as a read-only document, never written to disk. */
import * as vscode from 'vscode';

export const CONTEXT_SCHEME = 'tandem-context';

/** Read-only documents for "Show context sent" (nothing is written to disk). */
export class ContextDocuments implements vscode.TextDocumentContentProvider {
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
