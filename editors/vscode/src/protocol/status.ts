/**
 * `tandem/status` notifications `{state, message}` → what the status bar item shows.
 *
 * The server sends `ready`, `busy` (a model call past 250 ms), `error` (a one-line
 * reason; back to `ready` when the model answers again) and `inactive` (a file Tandem
 * will not read). The extension adds `starting` and `stopped` from the client's state.
 */

export type State = 'ready' | 'busy' | 'error' | 'inactive' | 'starting' | 'stopped';
export const SERVER_STATES: readonly State[] = ['ready', 'busy', 'error', 'inactive'];

export interface Status {
	state: State;
	message: string;
}

export interface StatusView {
	/** The item's text, with a codicon. */
	text: string;
	tooltip: string;
	/** A theme colour for the item's background (`statusBarItem.*Background`), if any. */
	background?: 'statusBarItem.errorBackground' | 'statusBarItem.warningBackground';
}

const ICONS: Record<State, string> = {
	ready: '$(check)',
	busy: '$(loading~spin)',
	error: '$(error)',
	inactive: '$(circle-slash)',
	starting: '$(loading~spin)',
	stopped: '$(debug-stop)',
};

const LABELS: Record<State, string> = {
	ready: 'ready',
	busy: 'asking the model',
	error: 'error',
	inactive: 'inactive for this file',
	starting: 'starting',
	stopped: 'stopped',
};

/** A status from a notification's params; an unknown or malformed one is an error status. */
export function parseStatus(params: unknown): Status {
	const value = (params ?? {}) as Record<string, unknown>;
	const state = value.state;
	const message = typeof value.message === 'string' ? value.message : '';
	if (typeof state === 'string' && (SERVER_STATES as readonly string[]).includes(state)) {
		return { state: state as State, message };
	}
	return { state: 'error', message: `unexpected status from the server: ${JSON.stringify(params)}` };
}

export function statusView(status: Status): StatusView {
	const oneLine = status.message.replace(/\s+/g, ' ').trim();
	const label = LABELS[status.state];
	const view: StatusView = {
		text: `${ICONS[status.state]} Tandem`,
		tooltip: `Tandem: ${label}${oneLine ? ` — ${oneLine}` : ''}\nClick to show the log`,
	};
	if (status.state === 'error') {
		view.background = 'statusBarItem.errorBackground';
	} else if (status.state === 'stopped') {
		view.background = 'statusBarItem.warningBackground';
	}
	return view;
}
