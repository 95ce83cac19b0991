/**
 * `textDocument/inlineCompletion` (LSP 3.18): the request the ghost text comes from.
 *
 * The server answers an `InlineCompletionList` with at most one item: `insertText`, the
 * cursor as `range`, and the `tandem.acceptCompletion` command, which VS Code runs when
 * the user accepts (the language client registered it from `executeCommandProvider`).
 */
import {
	InlineCompletionRequest,
	InlineCompletionTriggerKind,
	type CancellationToken,
	type InlineCompletionItem,
	type InlineCompletionList,
	type InlineCompletionParams,
	type Position,
	type Range,
} from 'vscode-languageserver-protocol';
import type { Rpc } from './rpc';

export const INLINE_METHOD = InlineCompletionRequest.method;

export interface InlineRequest {
	uri: string;
	position: Position;
	/** Invoked: the user asked (e.g. Alt+\); automatic: typing. */
	trigger: 'invoked' | 'automatic';
	/** The completion-popup item shown, when there is one (VS Code passes it on). */
	selected?: { range: Range; text: string };
}

export function inlineParams(request: InlineRequest): InlineCompletionParams {
	return {
		textDocument: { uri: request.uri },
		position: { line: request.position.line, character: request.position.character },
		context: {
			triggerKind:
				request.trigger === 'invoked'
					? InlineCompletionTriggerKind.Invoked
					: InlineCompletionTriggerKind.Automatic,
			selectedCompletionInfo: request.selected
				? { range: request.selected.range, text: request.selected.text }
				: undefined,
		},
	};
}

/** The items of an answer, whichever of its allowed shapes it has. */
export function inlineItems(
	result: InlineCompletionList | InlineCompletionItem[] | null | undefined,
): InlineCompletionItem[] {
	if (!result) {
		return [];
	}
	return Array.isArray(result) ? result : result.items;
}

/** The text an item inserts (a snippet's text when the server sent one). */
export function insertText(item: InlineCompletionItem): string {
	return typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
}

export async function requestInline(
	rpc: Rpc,
	request: InlineRequest,
	token?: CancellationToken,
): Promise<InlineCompletionList | InlineCompletionItem[] | null> {
	return rpc.sendRequest(INLINE_METHOD, inlineParams(request), token);
}
