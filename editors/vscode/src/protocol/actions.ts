/**
 * Code actions: "Tandem: Explain", "Tandem: Fix", "Tandem: Add docstring/comments",
 * "Tandem: Write tests" (server/tandem/lsp/chat.py).
 *
 * `textDocument/codeAction` offers them at once, without asking the model; each carries
 * `data.action`. `codeAction/resolve` runs the model and fills in `edit`, a WorkspaceEdit
 * that touches only the selected range (versioned, so an edit made for an older version
 * of the document is refused). Explain is a `tandem.chat` command instead of an edit.
 */
import {
	CodeActionKind,
	CodeActionResolveRequest,
	CodeActionRequest,
	CodeActionTriggerKind,
	type CancellationToken,
	type CodeAction,
	type CodeActionParams,
	type Command,
	type Position,
	type Range,
	type TextEdit,
	type WorkspaceEdit,
} from 'vscode-languageserver-protocol';
import type { ChatArguments } from './chat';
import { CHAT_COMMAND, type Rpc } from './rpc';

export type ActionName = 'explain' | 'fix' | 'docstring' | 'tests';

export const ACTION_KINDS: Record<ActionName, string> = {
	explain: CodeActionKind.Empty,
	fix: CodeActionKind.QuickFix,
	docstring: CodeActionKind.RefactorRewrite,
	tests: CodeActionKind.Source,
};

export function codeActionParams(uri: string, range: Range, only?: ActionName): CodeActionParams {
	return {
		textDocument: { uri },
		range,
		context: {
			diagnostics: [],
			only: only === undefined ? undefined : [ACTION_KINDS[only]],
			triggerKind: CodeActionTriggerKind.Invoked,
		},
	};
}

export async function requestActions(
	rpc: Rpc,
	uri: string,
	range: Range,
	only?: ActionName,
	token?: CancellationToken,
): Promise<Array<Command | CodeAction>> {
	const result = await rpc.sendRequest<Array<Command | CodeAction> | null>(
		CodeActionRequest.method,
		codeActionParams(uri, range, only),
		token,
	);
	return result ?? [];
}

function isCodeAction(value: Command | CodeAction): value is CodeAction {
	return typeof (value as CodeAction).title === 'string' && typeof value.command !== 'string';
}

/** The offered action called `name` (by its `data.action`), if the server offered it. */
export function findAction(
	actions: Array<Command | CodeAction>,
	name: ActionName,
): CodeAction | undefined {
	return actions.filter(isCodeAction).find((action) => {
		const data = action.data as { action?: unknown } | undefined;
		return data?.action === name;
	});
}

export async function resolveAction(
	rpc: Rpc,
	action: CodeAction,
	token?: CancellationToken,
): Promise<CodeAction> {
	return rpc.sendRequest<CodeAction>(CodeActionResolveRequest.method, action, token);
}

/** Offer, pick and resolve one action: its edit, or undefined when none was offered here. */
export async function actionEdit(
	rpc: Rpc,
	uri: string,
	range: Range,
	name: Exclude<ActionName, 'explain'>,
	token?: CancellationToken,
): Promise<WorkspaceEdit | undefined> {
	const action = findAction(await requestActions(rpc, uri, range, name, token), name);
	if (!action) {
		return undefined;
	}
	const resolved = await resolveAction(rpc, action, token);
	if (!resolved.edit) {
		throw new Error(`${action.title}: the server resolved the action without an edit`);
	}
	return resolved.edit;
}

/** The chat arguments of an Explain action (a `tandem.chat` command), if it is one. */
export function explainArguments(
	action: CodeAction | Command | undefined,
): Omit<ChatArguments, 'token'> | undefined {
	const command = action && (isCodeAction(action) ? action.command : (action as Command));
	if (!command || command.command !== CHAT_COMMAND) {
		return undefined;
	}
	return chatArgumentsOf(command.arguments);
}

/** `tandem.chat`'s single argument, checked, from a command's argument list. */
export function chatArgumentsOf(args: unknown): Omit<ChatArguments, 'token'> | undefined {
	const first = Array.isArray(args) ? (args[0] as Partial<ChatArguments> | undefined) : undefined;
	if (!first || typeof first.uri !== 'string' || !first.range || typeof first.question !== 'string') {
		return undefined;
	}
	const out: Omit<ChatArguments, 'token'> = {
		uri: first.uri,
		range: first.range,
		question: first.question,
	};
	if (Array.isArray(first.history)) {
		out.history = first.history;
	}
	return out;
}

/** The text edits of a WorkspaceEdit for each document, whichever form it came in. */
export function textEdits(edit: WorkspaceEdit): Map<string, TextEdit[]> {
	const out = new Map<string, TextEdit[]>();
	for (const [uri, edits] of Object.entries(edit.changes ?? {})) {
		out.set(uri, [...(out.get(uri) ?? []), ...edits]);
	}
	for (const change of edit.documentChanges ?? []) {
		if ('textDocument' in change) {
			const uri = change.textDocument.uri;
			out.set(uri, [...(out.get(uri) ?? []), ...(change.edits as TextEdit[])]);
		}
	}
	return out;
}

/** Apply LSP text edits (UTF-16 positions, as JS strings count) to a text. */
export function applyTextEdits(text: string, edits: readonly TextEdit[]): string {
	const starts = [0];
	for (let i = 0; i < text.length; i++) {
		if (text[i] === '\n') {
			starts.push(i + 1);
		}
	}
	const offset = (line: number, character: number): number => {
		if (line >= starts.length) {
			return text.length;
		}
		const end = line + 1 < starts.length ? starts[line + 1] - 1 : text.length;
		return Math.min(starts[line] + character, end);
	};
	const located = edits.map((e) => ({
		start: offset(e.range.start.line, e.range.start.character),
		end: offset(e.range.end.line, e.range.end.character),
		text: e.newText,
	}));
	located.sort((a, b) => b.start - a.start || b.end - a.end);
	let out = text;
	for (const e of located) {
		out = out.slice(0, e.start) + e.text + out.slice(e.end);
	}
	return out;
}

/**
 * The range to act on: the selection, or the cursor's whole line when nothing is
 * selected (the server offers actions only on a range holding some code).
 */
export function rangeOrLine(range: Range, lineLength: number): Range {
	const { start, end } = range;
	if (start.line !== end.line || start.character !== end.character) {
		return range;
	}
	return { start: { line: start.line, character: 0 }, end: { line: start.line, character: lineLength } };
}

function before(a: Position, b: Position): boolean {
	return a.line < b.line || (a.line === b.line && a.character < b.character);
}

function where(range: Range): string {
	const { start, end } = range;
	return `${start.line + 1}:${start.character + 1}-${end.line + 1}:${end.character + 1}`;
}

/**
 * Why `edit` is not an edit of `range` in `uri` alone, or undefined when it is.
 *
 * Fix replaces the person's selection and nothing else: an edit elsewhere in the file, in
 * another file, or a file operation would change code they never saw in the diff's
 * context and did not select, so the extension refuses it whatever the server says.
 */
export function editOutside(edit: WorkspaceEdit, uri: string, range: Range): string | undefined {
	for (const change of edit.documentChanges ?? []) {
		if (!('textDocument' in change)) {
			return `it would ${change.kind} a file`;
		}
	}
	for (const [target, edits] of textEdits(edit)) {
		if (target !== uri) {
			return `it edits another file (${target})`;
		}
		for (const { range: r } of edits) {
			if (before(r.start, range.start) || before(range.end, r.end)) {
				return `it edits ${where(r)}, outside the selection ${where(range)}`;
			}
		}
	}
	return undefined;
}
