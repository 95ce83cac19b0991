/** One line for the user from a failed request (JSON-RPC error codes of LSP 3.17/3.18). */

export const CONTENT_MODIFIED = -32801;
export const REQUEST_CANCELLED = -32800;
export const REQUEST_FAILED = -32803;
export const INVALID_PARAMS = -32602;

export function errorCode(error: unknown): number | undefined {
	const code = (error as { code?: unknown } | null)?.code;
	return typeof code === 'number' ? code : undefined;
}

export function isCancellation(error: unknown): boolean {
	return errorCode(error) === REQUEST_CANCELLED;
}

export function describeError(error: unknown): string {
	const code = errorCode(error);
	const message = error instanceof Error ? error.message : String(error);
	const text = message.replace(/\s+/g, ' ').trim();
	if (code === CONTENT_MODIFIED) {
		return `The document changed while Tandem was working; try again. (${text})`;
	}
	if (code === REQUEST_CANCELLED) {
		return 'Cancelled.';
	}
	return text || 'unknown error';
}
