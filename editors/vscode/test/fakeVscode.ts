/**
 * A stand-in for the `vscode` module, enough to activate the bundled extension
 * (dist/extension.js) in plain Node: the real vscode-languageclient inside it starts
 * the real `tandem serve`, and the test drives it the way the editor would — open a
 * document, ask the registered inline-completion provider, run commands — and reads
 * what it shows (status bar item, webview messages, applied edits).
 *
 * Only what the extension and the language client touch is modelled; anything else
 * is an inert stub (recorded in `missing`, for debugging). VS Code itself cannot be
 * downloaded here, so this is the closest to the editor the tests get.
 */
import Module from 'node:module';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type Listener<T> = (event: T) => unknown;

export class EventEmitter<T> {
	private readonly listeners = new Set<Listener<T>>();
	event = (listener: Listener<T>, thisArg?: unknown, disposables?: Array<{ dispose(): void }>) => {
		const bound: Listener<T> = (e) => listener.call(thisArg, e);
		this.listeners.add(bound);
		const disposable = { dispose: () => this.listeners.delete(bound) };
		disposables?.push(disposable);
		return disposable;
	};
	fire(event: T): void {
		for (const listener of [...this.listeners]) {
			listener(event);
		}
	}
	dispose(): void {
		this.listeners.clear();
	}
}

export class Disposable {
	constructor(private readonly callOnDispose: () => unknown = () => undefined) {}
	static from(...items: Array<{ dispose(): unknown }>): Disposable {
		return new Disposable(() => items.forEach((i) => i.dispose()));
	}
	dispose(): void {
		this.callOnDispose();
	}
}

export class Uri {
	private constructor(
		readonly scheme: string,
		readonly authority: string,
		readonly path: string,
		readonly query: string,
		readonly fragment: string,
	) {}
	static parse(value: string): Uri {
		const match = /^([a-zA-Z][\w+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(value);
		if (!match) {
			throw new Error(`not a URI: ${value}`);
		}
		return new Uri(match[1], match[2] ?? '', decodeURIComponent(match[3]), match[4] ?? '', match[5] ?? '');
	}
	static file(path: string): Uri {
		return new Uri('file', '', path, '', '');
	}
	static from(parts: { scheme: string; authority?: string; path?: string; query?: string; fragment?: string }): Uri {
		return new Uri(parts.scheme, parts.authority ?? '', parts.path ?? '', parts.query ?? '', parts.fragment ?? '');
	}
	get fsPath(): string {
		return this.scheme === 'file' ? fileURLToPath(this.toString()) : this.path;
	}
	with(change: Partial<Record<'scheme' | 'authority' | 'path' | 'query' | 'fragment', string>>): Uri {
		return Uri.from({ ...this, ...change });
	}
	toString(): string {
		if (this.scheme === 'file') {
			return pathToFileURL(this.path).href;
		}
		const authority = this.authority ? `//${this.authority}` : '';
		return `${this.scheme}:${authority}${encodeURI(this.path)}${this.query ? `?${this.query}` : ''}`;
	}
	toJSON(): unknown {
		return { scheme: this.scheme, path: this.path, external: this.toString() };
	}
}

export class Position {
	constructor(
		readonly line: number,
		readonly character: number,
	) {}
	isEqual(other: Position): boolean {
		return this.line === other.line && this.character === other.character;
	}
	isBefore(other: Position): boolean {
		return this.line < other.line || (this.line === other.line && this.character < other.character);
	}
	translate(lineDelta = 0, characterDelta = 0): Position {
		return new Position(this.line + lineDelta, this.character + characterDelta);
	}
}

export class Range {
	readonly start: Position;
	readonly end: Position;
	constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
		this.start = typeof a === 'number' ? new Position(a, b as number) : a;
		this.end = typeof a === 'number' ? new Position(c!, d!) : (b as Position);
	}
	get isEmpty(): boolean {
		return this.start.isEqual(this.end);
	}
	get isSingleLine(): boolean {
		return this.start.line === this.end.line;
	}
}

export class Selection extends Range {
	constructor(
		readonly anchor: Position,
		readonly active: Position,
	) {
		super(anchor.isBefore(active) ? anchor : active, anchor.isBefore(active) ? active : anchor);
	}
}

export class TextEdit {
	constructor(
		readonly range: Range,
		readonly newText: string,
	) {}
	static replace(range: Range, newText: string): TextEdit {
		return new TextEdit(range, newText);
	}
}

export class WorkspaceEdit {
	readonly edits = new Map<string, { uri: Uri; edits: TextEdit[] }>();
	set(uri: Uri, edits: Array<TextEdit | [TextEdit, unknown]>): void {
		this.edits.set(uri.toString(), { uri, edits: edits.map((e) => (Array.isArray(e) ? e[0] : e)) });
	}
	replace(uri: Uri, range: Range, newText: string): void {
		const entry = this.edits.get(uri.toString()) ?? { uri, edits: [] };
		entry.edits.push(new TextEdit(range, newText));
		this.edits.set(uri.toString(), entry);
	}
	entries(): Array<[Uri, TextEdit[]]> {
		return [...this.edits.values()].map((e) => [e.uri, e.edits]);
	}
	get size(): number {
		return this.edits.size;
	}
}

export class CodeAction {
	edit?: WorkspaceEdit;
	command?: { command: string; title: string; arguments?: unknown[] };
	isPreferred?: boolean;
	constructor(
		readonly title: string,
		readonly kind?: unknown,
	) {}
}

export class TabInputText {
	constructor(readonly uri: Uri) {}
}

export class TabInputTextDiff {
	constructor(
		readonly original: Uri,
		readonly modified: Uri,
	) {}
}

export class SnippetString {
	constructor(readonly value = '') {}
}

export class InlineCompletionItem {
	constructor(
		readonly insertText: string | SnippetString,
		readonly range?: Range,
		readonly command?: { command: string; title: string; arguments?: unknown[] },
	) {}
	filterText?: string;
}

export class InlineCompletionList {
	constructor(readonly items: InlineCompletionItem[]) {}
}

export class ThemeColor {
	constructor(readonly id: string) {}
}

export class CancellationTokenSource {
	private readonly emitter = new EventEmitter<void>();
	readonly token = {
		isCancellationRequested: false,
		onCancellationRequested: this.emitter.event,
	};
	cancel(): void {
		if (!this.token.isCancellationRequested) {
			this.token.isCancellationRequested = true;
			this.emitter.fire();
		}
	}
	dispose(): void {
		this.emitter.dispose();
	}
}

export class CancellationError extends Error {}

export class MarkdownString {
	constructor(public value = '') {}
}

// ---- documents -------------------------------------------------------------------------------

export class FakeDocument {
	version = 1;
	isDirty = false;
	isClosed = false;
	readonly isUntitled = false;
	readonly eol = 1;
	constructor(
		readonly uri: Uri,
		public text: string,
		readonly languageId: string,
	) {}
	get fileName(): string {
		return this.uri.fsPath;
	}
	private get lines(): string[] {
		return this.text.split('\n');
	}
	get lineCount(): number {
		return this.lines.length;
	}
	lineAt(line: number | Position) {
		const n = typeof line === 'number' ? line : line.line;
		const text = this.lines[n];
		return { lineNumber: n, text, range: new Range(n, 0, n, text.length), isEmptyOrWhitespace: !text.trim() };
	}
	offsetAt(position: Position): number {
		const lines = this.lines;
		let offset = 0;
		for (let i = 0; i < position.line; i++) {
			offset += lines[i].length + 1;
		}
		return offset + position.character;
	}
	positionAt(offset: number): Position {
		const before = this.text.slice(0, offset).split('\n');
		return new Position(before.length - 1, before[before.length - 1].length);
	}
	getText(range?: Range): string {
		return range ? this.text.slice(this.offsetAt(range.start), this.offsetAt(range.end)) : this.text;
	}
	save(): Promise<boolean> {
		return Promise.resolve(true);
	}
}

// ---- the module -------------------------------------------------------------------------------

export interface FakeState {
	settings: Record<string, unknown>;
	commands: Map<string, (...args: any[]) => any>;
	inlineProviders: Array<{ selector: unknown; provider: any }>;
	statusItems: any[];
	panels: Array<{ title: string; html: string; messages: any[]; receive: EventEmitter<any>; disposed: boolean }>;
	shown: Array<{ kind: 'info' | 'warning' | 'error'; message: string }>;
	inputs: Array<string | undefined>;
	applied: WorkspaceEdit[];
	documents: FakeDocument[];
	contentProviders: Map<string, any>;
	opened: any[];
	/** Each `vscode.diff` run: its sides, title, and the right side's text when it opened. */
	diffs: Array<{ left: Uri; right: Uri; title: string; text: string; options: unknown; closed: boolean }>;
	/** The open editor tabs (one group): diff editors only, as the extension opens no other. */
	tabs: Array<{ label: string; input: unknown }>;
	/** What a person clicks on a notification with buttons (undefined: dismissed). */
	choose: (message: string, items: string[]) => string | undefined | Promise<string | undefined>;
	log: string[];
	/** The output channel's log level (1: Trace, which turns on the client's message trace). */
	logLevel: number;
	missing: Set<string>;
	activeTextEditor: { document: FakeDocument; selection: Selection } | undefined;
	events: {
		open: EventEmitter<FakeDocument>;
		change: EventEmitter<any>;
		close: EventEmitter<FakeDocument>;
		configuration: EventEmitter<{ affectsConfiguration(section: string): boolean }>;
	};
}

/** An inert value for anything not modelled: callable, constructible, every property another one. */
function inert(state: FakeState, path: string): any {
	state.missing.add(path);
	const target = function () {
		return undefined;
	};
	return new Proxy(target, {
		get: (_, property) => {
			if (property === 'then' || typeof property === 'symbol') {
				return undefined;
			}
			if (property === 'dispose') {
				return () => undefined;
			}
			return inert(state, `${path}.${String(property)}`);
		},
		apply: () => inert(state, `${path}()`),
		construct: () => inert(state, `new ${path}`),
	});
}

function withFallback<T extends object>(state: FakeState, path: string, value: T): T {
	return new Proxy(value, {
		get: (target, property, receiver) => {
			if (property in target || typeof property === 'symbol') {
				return Reflect.get(target, property, receiver);
			}
			return inert(state, `${path}.${String(property)}`);
		},
	});
}

function logChannel(state: FakeState, name: string) {
	const write = (level: string) => (message: unknown) => {
		state.log.push(`[${name}:${level}] ${String(message)}`);
	};
	return {
		name,
		logLevel: state.logLevel,
		onDidChangeLogLevel: new EventEmitter<number>().event,
		trace: write('trace'),
		debug: write('debug'),
		info: write('info'),
		warn: write('warn'),
		error: write('error'),
		append: write('append'),
		appendLine: write('line'),
		replace: write('replace'),
		clear: () => undefined,
		show: () => undefined,
		hide: () => undefined,
		dispose: () => undefined,
	};
}

export function createFakeVscode(workspaceFolder: string, settings: Record<string, unknown>, logLevel = 3) {
	const state: FakeState = {
		settings,
		commands: new Map(),
		inlineProviders: [],
		statusItems: [],
		panels: [],
		shown: [],
		inputs: [],
		applied: [],
		documents: [],
		contentProviders: new Map(),
		opened: [],
		diffs: [],
		tabs: [],
		choose: () => undefined,
		log: [],
		logLevel,
		missing: new Set(),
		activeTextEditor: undefined,
		events: {
			open: new EventEmitter(),
			change: new EventEmitter(),
			close: new EventEmitter(),
			configuration: new EventEmitter(),
		},
	};
	const folder = { uri: Uri.file(workspaceFolder), name: 'ws', index: 0 };
	const show = (kind: 'info' | 'warning' | 'error') => async (message: string, ...items: unknown[]) => {
		state.shown.push({ kind, message });
		const buttons = items.filter((i): i is string => typeof i === 'string');
		return buttons.length ? state.choose(message, buttons) : undefined;
	};
	const changedTabs = new EventEmitter<any>();
	const tabGroup = {
		isActive: true,
		viewColumn: 1,
		get tabs() {
			return [...state.tabs];
		},
	};

	const matches = (selector: any, document: FakeDocument): number => {
		const filters = Array.isArray(selector) ? selector : [selector];
		return filters.some(
			(f: any) =>
				(typeof f === 'string' && f === document.languageId) ||
				(typeof f === 'object' &&
					(!f.scheme || f.scheme === document.uri.scheme) &&
					(!f.language || f.language === document.languageId)),
		)
			? 10
			: 0;
	};

	const workspace = {
		workspaceFolders: [folder],
		name: 'ws',
		get textDocuments() {
			return state.documents.filter((d) => !d.isClosed);
		},
		onDidOpenTextDocument: state.events.open.event,
		onDidChangeTextDocument: state.events.change.event,
		onDidCloseTextDocument: state.events.close.event,
		onDidSaveTextDocument: new EventEmitter<any>().event,
		onWillSaveTextDocument: new EventEmitter<any>().event,
		onDidChangeConfiguration: state.events.configuration.event,
		onDidChangeWorkspaceFolders: new EventEmitter<any>().event,
		getConfiguration: (section?: string) => ({
			get: (name: string, fallback?: unknown) => {
				const key = section ? `${section}.${name}` : name;
				return key in state.settings ? state.settings[key] : fallback;
			},
			has: (name: string) => `${section}.${name}` in state.settings,
			inspect: () => undefined,
			update: () => {
				throw new Error('the extension must not write settings');
			},
		}),
		getWorkspaceFolder: () => folder,
		asRelativePath: (value: Uri | string) =>
			relative(workspaceFolder, typeof value === 'string' ? value : value.fsPath),
		registerTextDocumentContentProvider: (scheme: string, provider: unknown) => {
			state.contentProviders.set(scheme, provider);
			return new Disposable();
		},
		openTextDocument: async (uri: Uri) => {
			const provider = state.contentProviders.get(uri.scheme);
			const text = provider ? provider.provideTextDocumentContent(uri) : '';
			const document = new FakeDocument(uri, text, 'markdown');
			state.opened.push(document);
			return document;
		},
		applyEdit: async (edit: WorkspaceEdit) => {
			state.applied.push(edit);
			for (const [uri, edits] of edit.entries()) {
				const document = state.documents.find((d) => d.uri.toString() === uri.toString());
				if (!document) {
					return false;
				}
				// Last edit first, so earlier ranges stay valid; then tell the client, as VS Code does.
				const sorted = [...edits].sort((a, b) => document.offsetAt(b.range.start) - document.offsetAt(a.range.start));
				const contentChanges = sorted.map((e) => {
					const start = document.offsetAt(e.range.start);
					const end = document.offsetAt(e.range.end);
					const change = { range: e.range, rangeOffset: start, rangeLength: end - start, text: e.newText };
					document.text = document.text.slice(0, start) + e.newText + document.text.slice(end);
					return change;
				});
				document.version += 1;
				state.events.change.fire({ document, contentChanges, reason: undefined });
			}
			return true;
		},
	};

	const window = {
		get activeTextEditor() {
			return state.activeTextEditor;
		},
		visibleTextEditors: [],
		tabGroups: {
			get all() {
				return [tabGroup];
			},
			onDidChangeTabs: changedTabs.event,
			onDidChangeTabGroups: new EventEmitter<any>().event,
			close: async (tabs: any) => {
				const closed = (Array.isArray(tabs) ? tabs : [tabs]).filter((t) => state.tabs.includes(t));
				state.tabs = state.tabs.filter((t) => !closed.includes(t));
				for (const tab of closed) {
					const diff = state.diffs.find((d) => tab.input instanceof TabInputTextDiff && d.right.toString() === tab.input.modified.toString());
					if (diff) {
						diff.closed = true;
					}
				}
				changedTabs.fire({ opened: [], closed, changed: [] });
				return true;
			},
		},
		onDidChangeActiveTextEditor: new EventEmitter<any>().event,
		onDidChangeVisibleTextEditors: new EventEmitter<any>().event,
		createOutputChannel: (name: string) => logChannel(state, name),
		createStatusBarItem: (id: string) => {
			const item = { id, text: '', tooltip: '', name: '', command: undefined, backgroundColor: undefined, show() {}, hide() {}, dispose() {} };
			state.statusItems.push(item);
			return item;
		},
		showInputBox: async () => state.inputs.shift(),
		showQuickPick: async (items: any[]) => items[0],
		showInformationMessage: show('info'),
		showWarningMessage: show('warning'),
		showErrorMessage: show('error'),
		withProgress: async (_options: unknown, task: (progress: unknown, token: unknown) => Promise<unknown>) =>
			task({ report: () => undefined }, new CancellationTokenSource().token),
		createWebviewPanel: (_type: string, title: string) => {
			const receive = new EventEmitter<any>();
			const disposed = new EventEmitter<void>();
			const record = { title, html: '', messages: [] as any[], receive, disposed: false };
			state.panels.push(record);
			return {
				get title() {
					return record.title;
				},
				set title(value: string) {
					record.title = value;
				},
				webview: {
					cspSource: 'vscode-webview:',
					get html() {
						return record.html;
					},
					set html(value: string) {
						record.html = value;
					},
					postMessage: async (message: unknown) => {
						record.messages.push(message);
						return true;
					},
					onDidReceiveMessage: receive.event,
				},
				onDidDispose: disposed.event,
				reveal: () => undefined,
				dispose: () => {
					record.disposed = true;
					disposed.fire();
				},
			};
		},
		showTextDocument: async (document: unknown) => document,
	};

	const commands = {
		registerCommand: (id: string, callback: (...args: any[]) => any) => {
			if (state.commands.has(id)) {
				throw new Error(`command '${id}' already exists`);
			}
			state.commands.set(id, callback);
			return new Disposable(() => state.commands.delete(id));
		},
		executeCommand: async (id: string, ...args: unknown[]) => {
			if (id === 'vscode.diff') {
				// VS Code's diff editor: the right side's text comes from its content provider.
				const [left, right, title, options] = args as [Uri, Uri, string, unknown];
				const provider = state.contentProviders.get(right.scheme);
				const text = provider ? provider.provideTextDocumentContent(right) : '';
				state.diffs.push({ left, right, title, text, options, closed: false });
				const tab = { label: title, input: new TabInputTextDiff(left, right) };
				state.tabs.push(tab);
				changedTabs.fire({ opened: [tab], closed: [], changed: [] });
				return undefined;
			}
			const command = state.commands.get(id);
			return command ? command(...args) : undefined;
		},
		getCommands: async () => [...state.commands.keys()],
	};

	const languages = {
		match: matches,
		registerInlineCompletionItemProvider: (selector: unknown, provider: unknown) => {
			const entry = { selector, provider };
			state.inlineProviders.push(entry);
			return new Disposable(() => state.inlineProviders.splice(state.inlineProviders.indexOf(entry), 1));
		},
		setTextDocumentLanguage: async (document: unknown) => document,
	};

	const api = {
		version: '1.91.0',
		env: withFallback(state, 'env', { language: 'en', appName: 'Visual Studio Code', machineId: 'test', uriScheme: 'vscode' }),
		workspace: withFallback(state, 'workspace', workspace),
		window: withFallback(state, 'window', window),
		commands: withFallback(state, 'commands', commands),
		languages: withFallback(state, 'languages', languages),
		EventEmitter,
		Disposable,
		Uri,
		Position,
		Range,
		Selection,
		TextEdit,
		WorkspaceEdit,
		SnippetString,
		CodeAction,
		TabInputText,
		TabInputTextDiff,
		InlineCompletionItem,
		InlineCompletionList,
		ThemeColor,
		CancellationTokenSource,
		CancellationError,
		MarkdownString,
		StatusBarAlignment: { Left: 1, Right: 2 },
		ViewColumn: { Active: -1, Beside: -2, One: 1, Two: 2 },
		ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
		InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
		EndOfLine: { LF: 1, CRLF: 2 },
		LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
		UIKind: { Desktop: 1, Web: 2 },
		ExtensionMode: { Production: 1, Development: 2, Test: 3 },
		ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
		TextDocumentSaveReason: { Manual: 1, AfterDelay: 2, FocusOut: 3 },
	};
	return { vscode: withFallback(state, 'vscode', api), state };
}

/** Make `require('vscode')` return `fake` (for the bundle, which is CommonJS). */
export function installFakeVscode(fake: unknown): () => void {
	const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
	const original = loader._load;
	loader._load = function (request: string, ...rest: unknown[]) {
		return request === 'vscode' ? fake : original.call(this, request, ...rest);
	};
	return () => {
		loader._load = original;
	};
}

/** A SecretStorage kept in memory. */
export function fakeSecrets() {
	const values = new Map<string, string>();
	const changed = new EventEmitter<{ key: string }>();
	return {
		values,
		get: async (key: string) => values.get(key),
		store: async (key: string, value: string) => {
			values.set(key, value);
			changed.fire({ key });
		},
		delete: async (key: string) => {
			values.delete(key);
			changed.fire({ key });
		},
		keys: async () => [...values.keys()],
		onDidChange: changed.event,
	};
}
