/**
 * The bundled extension (dist/extension.js), activated against a stand-in `vscode`
 * module (./fakeVscode.ts): its real language client starts the real `tandem serve`,
 * and the test uses it as a user would — ghost text, the commands, the status bar.
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import { SECRET_KEYS } from '../src/protocol/settings';
import {
	CancellationTokenSource,
	FakeDocument,
	Position,
	Range,
	Selection,
	Uri,
	WorkspaceEdit,
	createFakeVscode,
	fakeSecrets,
	installFakeVscode,
	type FakeState,
} from './fakeVscode';
import {
	DEFAULT_ANSWER,
	EXTENSION_DIR,
	MODEL,
	TANDEM_BIN,
	freePort,
	startModelServer,
	startProxy,
	tempHome,
	waitFor,
	writeFile,
	type ModelServer,
	type Proxy,
} from './helpers';

/** A relay between the client and `tandem serve` that widens Fix's range to the file's top. */
const WIDENING_RELAY = `
const { spawn } = require('node:child_process');
const child = spawn(TANDEM_BIN, process.argv.slice(2), { stdio: ['pipe', 'inherit', 'inherit'] });
child.on('exit', (code) => process.exit(code ?? 1));
process.on('SIGTERM', () => child.kill('SIGTERM'));
let buffer = Buffer.alloc(0);
process.stdin.on('end', () => child.stdin.end());
process.stdin.on('data', (chunk) => {
	buffer = Buffer.concat([buffer, chunk]);
	for (;;) {
		const end = buffer.indexOf('\\r\\n\\r\\n');
		if (end < 0) return;
		const length = Number(/Content-Length: *(\\d+)/i.exec(buffer.subarray(0, end).toString())[1]);
		if (buffer.length < end + 4 + length) return;
		const message = JSON.parse(buffer.subarray(end + 4, end + 4 + length).toString());
		buffer = buffer.subarray(end + 4 + length);
		if (message.method === 'codeAction/resolve' && message.params?.data?.action === 'fix') {
			message.params.data.range.start = { line: 0, character: 0 };
		}
		const body = Buffer.from(JSON.stringify(message));
		child.stdin.write('Content-Length: ' + body.length + '\\r\\n\\r\\n');
		child.stdin.write(body);
	}
});
`;

const SOURCE = [
	'def shout(text):',
	'    return text.upper()',
	'',
	'',
	'def greet(name):',
	'    print("")',
	'    return shout(name)',
	'',
].join('\n');

describe('the extension, activated in Node against the real server', () => {
	const temp = tempHome();
	const path = join(temp.ws, 'greet.py');
	const saved: Record<string, string | undefined> = {};
	let model: ModelServer;
	let proxy: Proxy;
	let state: FakeState;
	let uninstall: () => void;
	let extension: { activate(context: unknown): Promise<void>; deactivate(): Promise<void> };
	const secrets = fakeSecrets();
	const context = { subscriptions: [] as Array<{ dispose(): unknown }>, secrets };
	let document: FakeDocument;
	let vscodeApi: ReturnType<typeof createFakeVscode>['vscode'];
	const vscodeApplyEdit = (edit: WorkspaceEdit): Promise<boolean> => vscodeApi.workspace.applyEdit(edit);

	/** Failures end with the tail of the output channel (the client's and the server's logs). */
	const test = (name: string, body: () => Promise<void> | void) =>
		nodeTest(name, async () => {
			try {
				await body();
			} catch (error) {
				if (error instanceof Error && state) {
					error.message += `\n--- Tandem output channel (last lines) ---\n${state.log.slice(-40).join('\n')}`;
				}
				throw error;
			}
		});
	const status = () => state.statusItems[0];
	const statusIs = (text: string) => waitFor(`status ${text} (now ${status()?.text}: ${status()?.tooltip})`, () => status()?.text === text);
	const provider = () => state.inlineProviders.at(-1)?.provider;
	const complete = async (line: number, character: number, doc = document) =>
		provider().provideInlineCompletionItems(
			doc,
			new Position(line, character),
			{ triggerKind: 1, selectedCompletionInfo: undefined },
			new CancellationTokenSource().token,
		);
	const panel = () => state.panels.at(-1)!;
	const lastRender = () => panel().messages.at(-1);

	before(async () => {
		model = await startModelServer();
		proxy = await startProxy(model.url);
		// The server inherits the extension host's environment: keep the developer's out.
		for (const name of Object.keys(process.env)) {
			if (name.startsWith('TANDEM_') || /^(https?|all)_proxy$/i.test(name)) {
				saved[name] = process.env[name];
				delete process.env[name];
			}
		}
		for (const name of ['XDG_CONFIG_HOME', 'XDG_CACHE_HOME']) {
			saved[name] = process.env[name];
		}
		process.env.XDG_CONFIG_HOME = join(temp.home, 'xdg-config');
		process.env.XDG_CACHE_HOME = join(temp.home, 'xdg-cache');

		writeFile(path, SOURCE);
		const fake = createFakeVscode(temp.ws, {
			'tandem.path': TANDEM_BIN,
			'tandem.enable': { '*': true, plaintext: false },
			'tandem.completion.provider': 'openai',
			'tandem.completion.endpoint': `${proxy.url}/v1`,
			'tandem.completion.model': MODEL,
			'tandem.completion.fim': 'qwen',
			// The client's full message trace into the output channel (VS Code keeps it in
			// its log files): the API key must not show there either.
			'tandem.trace.server': 'verbose',
		}, 1);
		state = fake.state;
		vscodeApi = fake.vscode;
		uninstall = installFakeVscode(fake.vscode);
		extension = require(join(EXTENSION_DIR, 'dist', 'extension.js'));
		await extension.activate(context);
	});

	after(async () => {
		if (process.env.EXTENSION_TEST_LOG) {
			require('node:fs').writeFileSync(process.env.EXTENSION_TEST_LOG, state.log.join('\n'));
		}
		await extension?.deactivate();
		for (const d of context.subscriptions) {
			d.dispose();
		}
		uninstall?.();
		for (const [name, value] of Object.entries(saved)) {
			if (value === undefined) {
				delete process.env[name];
			} else {
				process.env[name] = value;
			}
		}
		await proxy?.stop();
		await model?.stop();
		temp.cleanup();
	});

	test('activation starts the server; the status bar item turns ready', async () => {
		await statusIs('$(check) Tandem');
		assert.match(status().tooltip, /ready — openai:qwen2\.5-coder/);
		assert.equal(status().command, 'tandem.showOutput');
		for (const id of ['tandem.chat', 'tandem.acceptCompletion', 'tandem.chatAboutSelection', 'tandem.fixSelection']) {
			assert.ok(state.commands.has(id), id);
		}
	});

	test('ghost text: the registered provider answers; accepting runs the command on the server', async () => {
		document = new FakeDocument(Uri.file(path), SOURCE, 'python');
		state.documents.push(document);
		state.events.open.fire(document);
		await waitFor('the inline completion provider', () => provider());
		const result = await complete(5, 11);
		assert.equal(result.items.length, 1, state.log.join('\n'));
		const [item] = result.items;
		assert.equal(item.insertText, DEFAULT_ANSWER);
		assert.deepEqual([item.range.start, item.range.end], [new Position(5, 11), new Position(5, 11)]);
		assert.equal(item.command.command, 'tandem.acceptCompletion');
		// VS Code runs the item's command on accept: the client forwards it to the server.
		assert.equal(await state.commands.get(item.command.command)!(...item.command.arguments), null);
		const sent = proxy.seen.filter((s) => s.path === '/v1/completions');
		assert.equal(sent.length, 1);
		assert.equal(sent[0].body.model, MODEL);
		assert.equal(sent[0].headers.authorization, undefined, 'no key set yet');
	});

	test('a language turned off in tandem.enable gets no ghost text and no model call', async () => {
		const notes = new FakeDocument(Uri.file(join(temp.ws, 'notes.txt')), 'print("', 'plaintext');
		state.documents.push(notes);
		state.events.open.fire(notes);
		const calls = proxy.seen.length;
		assert.equal(await complete(0, 7, notes), null);
		assert.equal(proxy.seen.length, calls);
	});

	test('Chat about selection: the answer streams into the panel; a follow-up keeps the history', async () => {
		state.activeTextEditor = { document, selection: new Selection(new Position(4, 0), new Position(7, 0)) };
		state.inputs.push('What does greet do?');
		await state.commands.get('tandem.chatAboutSelection')!();
		assert.equal(state.panels.length, 1);
		assert.match(panel().html, /Content-Security-Policy/);
		const final = lastRender();
		assert.equal(final.busy, false);
		assert.match(final.html, /<h2 class="title">Tandem: Chat — greet\.py:5-7<\/h2>/);
		assert.match(final.html, /<div class="question">What does greet do\?<\/div>/);
		assert.match(final.html, /<div class="answer"><p>Hello, world!<\/p><\/div>/);
		assert.ok(panel().messages.some((m) => m.busy), 'it showed the question while the answer streamed');
		const asked = proxy.seen.at(-1)!;
		assert.equal(asked.path, '/v1/chat/completions');
		assert.match(asked.body.messages.at(-1).content, /def greet\(name\):[\s\S]*What does greet do\?$/);

		panel().receive.fire({ type: 'ask', question: 'And shout?' });
		await waitFor('the follow-up answer', () => (lastRender().html.match(/Hello, world!/g) ?? []).length === 2 && !lastRender().busy);
		const roles = proxy.seen.at(-1)!.body.messages.map((m: { role: string }) => m.role);
		assert.deepEqual(roles, ['system', 'user', 'assistant', 'user']);
	});

	test("Explain from the light bulb (the server's tandem.chat command) streams into the panel", async () => {
		const range = { start: { line: 4, character: 0 }, end: { line: 7, character: 0 } };
		await state.commands.get('tandem.chat')!({ uri: document.uri.toString(), range, question: 'Explain this code' });
		assert.equal(state.panels.length, 1, 'the same panel');
		assert.equal(panel().title, 'Tandem: Explain');
		assert.match(lastRender().html, /Explain this code[\s\S]*Hello, world!/);
		await state.commands.get('tandem.explainSelection')!();
		assert.match(lastRender().html, /Explain this code[\s\S]*Hello, world!/);
	});

	/** Run Fix on line 7's `return shout(name)`; `choose` answers the Apply/Discard question. */
	const fix = async (choose: FakeState['choose']) => {
		const diffs = state.diffs.length;
		const applied = state.applied.length;
		state.activeTextEditor = { document, selection: new Selection(new Position(6, 4), new Position(6, 22)) };
		state.choose = choose;
		try {
			await state.commands.get('tandem.fixSelection')!();
		} finally {
			state.choose = () => undefined;
		}
		return { diff: state.diffs[diffs], applied: state.applied.length - applied };
	};
	const asked: Array<{ message: string; items: string[] }> = [];
	const answer = (choice: string | undefined): FakeState['choose'] => (message, items) => {
		asked.push({ message, items });
		return choice;
	};

	test('Fix shows the proposed text in a diff; Discard changes nothing', async () => {
		const before = document.text;
		const { diff, applied } = await fix(answer('Discard'));
		assert.ok(diff, JSON.stringify(state.shown));
		assert.equal(diff.left.toString(), document.uri.toString(), 'the left side is the document itself');
		assert.equal(diff.right.scheme, 'tandem-fix');
		assert.equal(diff.title, 'Tandem fix: greet.py (proposed)');
		assert.equal(diff.text, before.replace('return shout(name)', DEFAULT_ANSWER));
		assert.deepEqual(asked.at(-1), { message: 'Tandem: apply the proposed fix to greet.py:7?', items: ['Apply', 'Discard'] });
		assert.equal(applied, 0);
		assert.equal(document.text, before);
		assert.ok(diff.closed, 'the diff editor is closed');
		assert.deepEqual(state.tabs, []);
		assert.equal(state.contentProviders.get('tandem-fix').provideTextDocumentContent(diff.right), '', 'the proposal is dropped');
	});

	test('Fix: dismissing the question is Discard too', async () => {
		const before = document.text;
		const { diff, applied } = await fix(answer(undefined));
		assert.ok(diff?.closed);
		assert.equal(applied, 0);
		assert.equal(document.text, before);
	});

	/** Run Fix leaving the notification unanswered; `act` (the person) sees the diff and decides. */
	const fixWhile = async (act: (diff: FakeState['diffs'][number]) => Promise<unknown>) => {
		const diffs = state.diffs.length;
		const running = fix((message, items) => {
			asked.push({ message, items });
			return new Promise<undefined>(() => undefined); // the toast was never clicked
		});
		const diff = await waitFor('the diff editor', () => state.diffs[diffs]);
		await act(diff);
		return running;
	};

	test("Fix: the diff editor's title button Discard, or closing the diff, changes nothing", async () => {
		const before = document.text;
		const discarded = await fixWhile(async (diff) => state.commands.get('tandem.discardFix')!(diff.right));
		assert.ok(discarded.diff.closed);
		const closed = await fixWhile(async () => vscodeApi.window.tabGroups.close(state.tabs[0]));
		assert.ok(closed.diff.closed);
		assert.equal(discarded.applied + closed.applied, 0);
		assert.equal(document.text, before);
		assert.deepEqual(state.tabs, []);
	});

	test('Fix: a document changed while the diff is shown refuses to apply', async () => {
		const before = document.text;
		const typed = '# typed while the diff was open\n';
		const { diff, applied } = await fixWhile(async () => {
			// The person types at the end of the file, then clicks Apply in the diff's title.
			const end = document.positionAt(document.text.length);
			const edit = new WorkspaceEdit();
			edit.replace(document.uri, new Range(end, end), typed);
			await vscodeApplyEdit(edit);
			await state.commands.get('tandem.applyFix')!();
		});
		assert.ok(diff?.closed);
		assert.equal(applied, 1, 'only the typing was applied');
		assert.equal(document.text, before + typed);
		assert.ok(
			state.shown.some((s) => s.kind === 'warning' && s.message === 'Tandem: the document changed while fixing; the fix was not applied.'),
			JSON.stringify(state.shown),
		);
		// Undo the typing, as the person would, for the tests below.
		const start = document.positionAt(before.length);
		const undo = new WorkspaceEdit();
		undo.replace(document.uri, new Range(start, document.positionAt(document.text.length)), '');
		await vscodeApplyEdit(undo);
		assert.equal(document.text, before);
	});

	test('Fix: an edit outside the selection (a faulty server) is refused: no diff, nothing changed', async () => {
		// A relay in front of the real server that widens the range Fix resolves to line 1:
		// the server then answers with an edit from the top of the file.
		const relay = writeFile(
			join(temp.home, 'widening-relay.cjs'),
			[
				`#!${process.execPath}`,
				WIDENING_RELAY.replace('TANDEM_BIN', JSON.stringify(TANDEM_BIN)),
			].join('\n'),
		);
		chmodSync(relay, 0o755);
		const restartWith = async (path: string) => {
			const from = state.log.length;
			state.settings['tandem.path'] = path;
			state.events.configuration.fire({ affectsConfiguration: (s: string) => 'tandem.path'.startsWith(s) });
			await waitFor(`the server restarted with ${path}`, () => state.log.slice(from).some((l) => l.includes(`starting ${path} `)) && status()?.text === '$(check) Tandem', 60_000);
		};
		await restartWith(relay);
		try {
			const before = document.text;
			const shown = state.shown.length;
			const { diff, applied } = await fix(answer('Apply'));
			assert.equal(diff, undefined, 'no diff for a refused edit');
			assert.equal(applied, 0);
			assert.equal(document.text, before);
			const refused = state.shown.slice(shown).find((s) => s.kind === 'error');
			assert.ok(refused, JSON.stringify(state.shown.slice(shown)));
			assert.match(refused.message, /^Tandem: the fix was refused: it edits 1:1-7:23, outside the selection 7:5-7:23\. Nothing was changed\.$/);
		} finally {
			await restartWith(TANDEM_BIN);
		}
	});

	test('Fix: Apply replaces the selection only, in one workspace edit, and closes the diff', async () => {
		const before = document.text;
		const shown = state.shown.length;
		const { diff, applied } = await fix(answer('Apply'));
		assert.equal(applied, 1, JSON.stringify(state.shown));
		assert.equal(document.text, before.replace('return shout(name)', DEFAULT_ANSWER));
		assert.equal(diff.text, document.text, 'what the diff showed is what was applied');
		assert.ok(diff.closed);
		assert.deepEqual(state.tabs, []);
		assert.deepEqual(state.shown.slice(shown).filter((s) => s.kind !== 'info'), []);
	});

	test('Set API key: kept in SecretStorage, sent to the server, never logged', async () => {
		state.inputs.push('sk-from-secret-storage');
		await state.commands.get('tandem.setApiKey')!();
		assert.equal(secrets.values.get(SECRET_KEYS.completion), 'sk-from-secret-storage');
		await waitFor('the new settings sent', () => state.log.some((l) => l.includes('settings changed')));
		const calls = proxy.seen.length;
		await complete(1, 23);
		await waitFor('a model call', () => proxy.seen.length > calls);
		assert.equal(proxy.seen.at(-1)!.headers.authorization, 'Bearer sk-from-secret-storage');
		assert.ok(state.log.some((l) => l.includes('"api_key": "****"')), 'the traced settings, masked');
		assert.ok(!state.log.some((l) => l.includes('sk-from-secret-storage')), 'the key is not in the log');
		assert.ok(!Object.values(state.settings).some((v) => JSON.stringify(v).includes('sk-')));
	});

	test('Show context sent: the prompt for the cursor in a markdown document', async () => {
		state.activeTextEditor = { document, selection: new Selection(new Position(5, 11), new Position(5, 11)) };
		await state.commands.get('tandem.showContext')!();
		const shown = state.opened.at(-1);
		assert.ok(shown, JSON.stringify(state.shown));
		assert.match(shown.text, /^# Context sent for greet\.py:6:12/);
		assert.match(shown.text, /\| prefix \| \d+ \| greet\.py \|/);
		assert.match(shown.text, /<\|fim_prefix\|>[\s\S]*print\("<\|fim_suffix\|>/);
	});

	test('a settings change reaches the server: a dead endpoint shows the error in the status bar', async () => {
		state.settings['tandem.completion.endpoint'] = `http://127.0.0.1:${await freePort()}/v1`;
		state.events.configuration.fire({ affectsConfiguration: (s: string) => 'tandem.completion.endpoint'.startsWith(s) });
		await waitFor('the new settings sent', () => state.log.filter((l) => l.includes('settings changed')).length >= 2);
		assert.deepEqual((await complete(2, 0)).items, []);
		await statusIs('$(error) Tandem');
		assert.match(status().tooltip, /cannot reach/);
		assert.equal(status().backgroundColor.id, 'statusBarItem.errorBackground');
	});

	test('Restart server: a new server with the current settings', async () => {
		state.settings['tandem.completion.endpoint'] = `${proxy.url}/v1`;
		const before = state.inlineProviders.length;
		await state.commands.get('tandem.restartServer')!();
		await statusIs('$(check) Tandem');
		assert.ok(state.inlineProviders.length >= 1 && state.inlineProviders.length <= before, `${before} -> ${state.inlineProviders.length}\n${state.log.slice(-30).join('\n')}`);
		const result = await complete(5, 11);
		assert.equal(result.items[0].insertText, DEFAULT_ANSWER);
	});

	test('the server rejected no message and the client reported no failure', () => {
		const bad = state.log.filter((l) => /Invalid Params|Unable to (deserialize|handle)|Traceback|Server initialization failed/.test(l));
		assert.deepEqual(bad, []);
		const refusal = /^Tandem: the fix was refused: it edits 1:1-7:23/; // the faulty relay's, above
		assert.deepEqual(state.shown.filter((s) => s.kind === 'error' && !refusal.test(s.message)), []);
	});

	test('deactivation stops the server', async () => {
		await extension.deactivate();
		await statusIs('$(debug-stop) Tandem');
	});
});

describe('the extension with a tandem.path that does not exist', () => {
	const temp = tempHome();
	let state: FakeState;
	let uninstall: () => void;
	let extension: { activate(context: unknown): Promise<void>; deactivate(): Promise<void> };
	const context = { subscriptions: [] as Array<{ dispose(): unknown }>, secrets: fakeSecrets() };

	before(() => {
		const fake = createFakeVscode(temp.ws, { 'tandem.path': join(temp.home, 'no', 'tandem') });
		state = fake.state;
		uninstall = installFakeVscode(fake.vscode);
		const bundle = require.resolve(join(EXTENSION_DIR, 'dist', 'extension.js'));
		delete require.cache[bundle]; // a fresh copy that binds this fake `vscode`
		extension = require(bundle);
	});

	after(async () => {
		await extension?.deactivate();
		for (const d of context.subscriptions) {
			d.dispose();
		}
		uninstall?.();
		temp.cleanup();
	});

	nodeTest('activation finishes; the status bar and a message say why and where to fix it', async () => {
		await extension.activate(context);
		const item = state.statusItems[0];
		assert.equal(item.text, '$(debug-stop) Tandem');
		assert.match(item.tooltip, /cannot start the server/);
		const shown = state.shown.find((s) => s.kind === 'error' && s.message.startsWith('Tandem: cannot start'));
		assert.ok(shown, JSON.stringify(state.shown));
		assert.match(shown.message, /no\/tandem/);
		// One notification: the language client's generic start failure is not shown too.
		assert.equal(state.shown.filter((s) => s.kind === 'error').length, 1, JSON.stringify(state.shown));
		// Commands still answer, with a hint instead of an exception.
		state.activeTextEditor = {
			document: new FakeDocument(Uri.file(join(temp.ws, 'a.py')), 'x = 1\n', 'python'),
			selection: new Selection(new Position(0, 0), new Position(0, 5)),
		};
		await state.commands.get('tandem.fixSelection')!();
		assert.ok(state.shown.some((s) => s.kind === 'warning' && /not running/.test(s.message)), JSON.stringify(state.shown));
	});
});
