/**
 * Chat on a selection: the `tandem.chat` command and its streamed answer.
 *
 * `workspace/executeCommand` `tandem.chat` takes one argument
 * `{uri, range, question, token?, history?}` and answers `{"answer"}`. While the model
 * streams, the server sends `tandem/chatDelta` `{token, delta}` for the request that
 * gave `token`; every delta arrives before the answer. One `ChatDeltas` router is
 * registered per connection (a JSON-RPC connection keeps one handler per method) and
 * hands each delta to the stream with its token.
 */
import type { CancellationToken, Range } from 'vscode-languageserver-protocol';
import { CHAT_COMMAND, CHAT_DELTA, EXECUTE_COMMAND, type Disposable, type Rpc } from './rpc';

export interface ChatTurn {
	role: 'user' | 'assistant';
	content: string;
}

export interface ChatArguments {
	uri: string;
	range: Range;
	question: string;
	token?: string | number;
	history?: ChatTurn[];
}

export type TextListener = (text: string, delta: string) => void;

/** One answer being assembled from its deltas. */
export class ChatStream {
	private pieces: string[] = [];
	private count = 0;

	constructor(
		readonly token: string,
		private readonly listener?: TextListener,
	) {}

	push(delta: string): void {
		this.pieces.push(delta);
		this.count += 1;
		this.listener?.(this.text, delta);
	}

	get text(): string {
		return this.pieces.join('');
	}

	/** How many deltas arrived. */
	get deltas(): number {
		return this.count;
	}

	/**
	 * The server's whole answer: it is the truth. When the deltas did not add up to it
	 * (none were sent, or some were lost), the listener gets the whole answer once.
	 */
	finish(answer: string): string {
		if (answer !== this.text) {
			this.pieces = [answer];
			this.listener?.(answer, '');
		}
		return answer;
	}
}

let counter = 0;

export function newToken(): string {
	counter += 1;
	return `tandem-chat-${Date.now().toString(36)}-${counter}`;
}

/** Routes `tandem/chatDelta` notifications to the open streams by token. */
export class ChatDeltas {
	private readonly streams = new Map<string, ChatStream>();
	/** Deltas that matched no open stream (late, or for another client's token). */
	unmatched = 0;

	attach(rpc: Pick<Rpc, 'onNotification'>): Disposable {
		return rpc.onNotification(CHAT_DELTA, (params) => this.handle(params));
	}

	handle(params: unknown): boolean {
		const value = (params ?? {}) as Record<string, unknown>;
		const stream = this.streams.get(String(value.token));
		if (!stream || typeof value.delta !== 'string') {
			this.unmatched += 1;
			return false;
		}
		stream.push(value.delta);
		return true;
	}

	open(listener?: TextListener): ChatStream {
		const stream = new ChatStream(newToken(), listener);
		this.streams.set(stream.token, stream);
		return stream;
	}

	close(stream: ChatStream): void {
		this.streams.delete(stream.token);
	}

	get openStreams(): number {
		return this.streams.size;
	}
}

/** The `workspace/executeCommand` params for one question. */
export function chatCommandParams(args: ChatArguments): { command: string; arguments: [ChatArguments] } {
	const argument: ChatArguments = { uri: args.uri, range: args.range, question: args.question };
	if (args.token !== undefined) {
		argument.token = args.token;
	}
	if (args.history && args.history.length > 0) {
		argument.history = args.history.map((turn) => ({ role: turn.role, content: turn.content }));
	}
	return { command: CHAT_COMMAND, arguments: [argument] };
}

export function answerOf(result: unknown): string {
	const answer = (result as { answer?: unknown } | null)?.answer;
	if (typeof answer !== 'string') {
		throw new Error(`tandem.chat answered without an answer: ${JSON.stringify(result)}`);
	}
	return answer;
}

/**
 * Ask one question; `listener` sees the answer grow as deltas arrive. Resolves to the
 * whole answer. Cancelling `cancel` sends `$/cancelRequest`, which aborts the model call.
 */
export async function runChat(
	rpc: Rpc,
	deltas: ChatDeltas,
	args: Omit<ChatArguments, 'token'>,
	listener?: TextListener,
	cancel?: CancellationToken,
): Promise<string> {
	const stream = deltas.open(listener);
	try {
		const params = chatCommandParams({ ...args, token: stream.token });
		const result = await rpc.sendRequest<unknown>(EXECUTE_COMMAND, params, cancel);
		return stream.finish(answerOf(result));
	} finally {
		deltas.close(stream);
	}
}

/** A conversation about one selection: follow-up questions carry the earlier turns. */
export class Conversation {
	readonly turns: ChatTurn[] = [];

	constructor(
		readonly uri: string,
		readonly range: Range,
	) {}

	request(question: string): Omit<ChatArguments, 'token'> {
		return { uri: this.uri, range: this.range, question, history: [...this.turns] };
	}

	record(question: string, answer: string): void {
		this.turns.push({ role: 'user', content: question }, { role: 'assistant', content: answer });
	}

	async ask(
		rpc: Rpc,
		deltas: ChatDeltas,
		question: string,
		listener?: TextListener,
		cancel?: CancellationToken,
	): Promise<string> {
		const answer = await runChat(rpc, deltas, this.request(question), listener, cancel);
		this.record(question, answer);
		return answer;
	}
}
