/**
 * The extension's protocol modules against the real `tandem serve` over stdio, with the
 * project's loopback model server behind a recording proxy.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
	actionEdit,
	applyTextEdits,
	explainArguments,
	findAction,
	requestActions,
	resolveAction,
	textEdits,
} from '../src/protocol/actions';
import { ChatDeltas, Conversation, runChat } from '../src/protocol/chat';
import { contextInvocation, parseContext, renderContext } from '../src/protocol/context';
import { CONTENT_MODIFIED, errorCode } from '../src/protocol/errors';
import { inlineItems, insertText, requestInline } from '../src/protocol/inline';
import { ACCEPT_COMMAND, CHAT_COMMAND, EXECUTE_COMMAND } from '../src/protocol/rpc';
import { FIM_TEMPLATES, PROVIDERS, serverSettings, type SettingGetter } from '../src/protocol/settings';
import {
	DEFAULT_ANSWER,
	MODEL,
	TANDEM_BIN,
	cleanEnv,
	fileUri,
	freePort,
	modelEnv,
	startModelServer,
	startProxy,
	startTandem,
	tempHome,
	testWithServerLog,
	writeFile,
	type ModelServer,
	type Proxy,
	type Served,
} from './helpers';

const run = promisify(execFile);

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
const IN_STRING = { line: 5, character: 11 }; // print("|")
const GREET = { start: { line: 4, character: 0 }, end: { line: 7, character: 0 } };

/** `tandem.*` settings as VS Code would hand them to the extension. */
function getter(values: Record<string, unknown>): SettingGetter {
	return (name) => values[name];
}

let model: ModelServer;
let proxy: Proxy;

before(async () => {
	model = await startModelServer();
	proxy = await startProxy(model.url);
});

after(async () => {
	await proxy?.stop();
	await model?.stop();
});

describe('one session of tandem serve, as the extension drives it', () => {
	const temp = tempHome();
	let served: Served;
	let uri: string;
	const deltas = new ChatDeltas();
	const path = join(temp.ws, 'greet.py');
	const test = testWithServerLog(() => served);

	before(async () => {
		writeFile(path, SOURCE);
		// The settings the extension sends: the model from VS Code settings, the key from
		// SecretStorage (here: a fake one, which the proxy sees as a bearer token).
		const settings = serverSettings(
			getter({ 'completion.model': MODEL, 'completion.fim': 'qwen', 'chat.maxTokens': 200 }),
			{ completion: 'sk-test-key-1234' },
		);
		served = await startTandem({
			root: temp.ws,
			env: cleanEnv(modelEnv(proxy.url), temp.home),
			initializationOptions: settings,
		});
		deltas.attach(served.rpc);
	});

	after(async () => {
		await served?.stop();
		temp.cleanup();
	});

	test('initialize announces what the extension relies on', () => {
		const caps = served.init.capabilities;
		assert.ok(caps.inlineCompletionProvider, 'inlineCompletionProvider');
		assert.deepEqual(
			[...(caps.executeCommandProvider?.commands ?? [])].sort(),
			[ACCEPT_COMMAND, CHAT_COMMAND].sort(),
		);
		const actions = caps.codeActionProvider;
		assert.ok(actions && typeof actions === 'object' && actions.resolveProvider, 'codeAction resolve');
		assert.equal(caps.positionEncoding ?? 'utf-16', 'utf-16');
	});

	test('the status turns ready with the model it uses', async () => {
		const ready = await served.waitStatus('ready');
		assert.match(ready.message, /qwen2\.5-coder/);
	});

	test('inline completion: one item at the cursor, accepted through its command', async () => {
		uri = served.open(path, SOURCE);
		const before = served.statuses.length;
		const result = await requestInline(served.rpc, { uri, position: IN_STRING, trigger: 'automatic' });
		const items = inlineItems(result);
		assert.equal(items.length, 1, `one item: ${JSON.stringify(result)}\n${served.stderr()}`);
		const [item] = items;
		assert.equal(insertText(item), DEFAULT_ANSWER);
		assert.deepEqual(item.range, { start: IN_STRING, end: IN_STRING });
		assert.equal(item.command?.command, ACCEPT_COMMAND);
		// What VS Code does on accept: run the item's command (forwarded to the server).
		const accepted = await served.rpc.sendRequest(EXECUTE_COMMAND, {
			command: item.command!.command,
			arguments: item.command!.arguments,
		});
		assert.equal(accepted, null);
		// It asked the model. A quick call shows no busy (the server sends it only for a call
		// still running after 250 ms); a slower one shows busy, then ready again.
		if (served.statuses.slice(before).some((s) => s.state === 'busy')) {
			await served.waitStatus('ready', before);
		}
		assert.equal(served.statuses[served.statuses.length - 1]?.state, 'ready');
		// The completion went to /v1/completions with the settings and the key sent.
		const request = proxy.seen.find((s) => s.path === '/v1/completions');
		assert.ok(request, `the model got a completion request: ${JSON.stringify(proxy.seen)}`);
		assert.equal(request.headers.authorization, 'Bearer sk-test-key-1234');
		assert.equal(request.body.model, MODEL);
		assert.match(request.body.prompt, /<\|fim_prefix\|>[\s\S]*print\("<\|fim_suffix\|>"\)/);
	});

	test('an invoked request from the same place is answered from the cache', async () => {
		const calls = proxy.seen.length;
		const result = await requestInline(served.rpc, { uri, position: IN_STRING, trigger: 'invoked' });
		assert.equal(insertText(inlineItems(result)[0]), DEFAULT_ANSWER);
		assert.equal(proxy.seen.length, calls, 'no second model call');
	});

	test('chat: deltas stream before the whole answer, assembled in order', async () => {
		const events: string[] = [];
		const texts: string[] = [];
		const answer = await runChat(
			served.rpc,
			deltas,
			{ uri, range: GREET, question: 'What does greet do?' },
			(text, delta) => {
				events.push(`delta:${delta}`);
				texts.push(text);
			},
		).then((whole) => {
			events.push('answer');
			return whole;
		});
		assert.equal(answer, DEFAULT_ANSWER);
		assert.deepEqual(events, ['delta:Hello', 'delta:,', 'delta: world', 'delta:!', 'answer']);
		assert.deepEqual(texts, ['Hello', 'Hello,', 'Hello, world', DEFAULT_ANSWER]);
		assert.equal(deltas.openStreams, 0, 'the stream is closed after the answer');
		const request = proxy.seen.at(-1)!;
		assert.equal(request.path, '/v1/chat/completions');
		assert.equal(request.body.max_tokens, 200);
		const last = request.body.messages.at(-1);
		assert.equal(last.role, 'user');
		assert.match(last.content, /def greet\(name\):/);
		assert.match(last.content, /What does greet do\?$/);
	});

	test('chat: two questions at once each get only their own deltas', async () => {
		const a: string[] = [];
		const b: string[] = [];
		const [first, second] = await Promise.all([
			runChat(served.rpc, deltas, { uri, range: GREET, question: 'One?' }, (t) => a.push(t)),
			runChat(served.rpc, deltas, { uri, range: GREET, question: 'Two?' }, (t) => b.push(t)),
		]);
		assert.equal(first, DEFAULT_ANSWER);
		assert.equal(second, DEFAULT_ANSWER);
		assert.equal(a.at(-1), DEFAULT_ANSWER);
		assert.equal(b.at(-1), DEFAULT_ANSWER);
		assert.equal(a.length, 4);
		assert.equal(b.length, 4);
	});

	test('chat: a follow-up question carries the earlier turns as history', async () => {
		const conversation = new Conversation(uri, GREET);
		await conversation.ask(served.rpc, deltas, 'What does greet do?');
		const answer = await conversation.ask(served.rpc, deltas, 'And shout?');
		assert.equal(answer, DEFAULT_ANSWER);
		const messages = proxy.seen.at(-1)!.body.messages as Array<{ role: string; content: string }>;
		assert.deepEqual(
			messages.slice(1).map((m) => m.role),
			['user', 'assistant', 'user'],
		);
		assert.equal(messages[1].content, 'What does greet do?');
		assert.equal(messages[2].content, DEFAULT_ANSWER);
		assert.match(messages[3].content, /And shout\?$/);
	});

	test('chat without a token: the whole answer and no deltas', async () => {
		const before = deltas.unmatched;
		const result = await served.rpc.sendRequest<{ answer: string }>(EXECUTE_COMMAND, {
			command: CHAT_COMMAND,
			arguments: [{ uri, range: GREET, question: 'Quiet?' }],
		});
		assert.deepEqual(result, { answer: DEFAULT_ANSWER });
		assert.equal(deltas.unmatched, before);
	});

	test('chat about a document that is not open is an error the panel can show', async () => {
		await assert.rejects(
			runChat(served.rpc, deltas, { uri: fileUri(join(temp.ws, 'nope.py')), range: GREET, question: 'Hm?' }),
			/document not open/,
		);
		assert.equal(deltas.openStreams, 0);
	});

	test('code actions: the four are offered at once; Explain is a tandem.chat command', async () => {
		const calls = proxy.seen.length;
		const offered = await requestActions(served.rpc, uri, GREET);
		const names = offered.map((a) => (a as { data?: { action?: string } }).data?.action);
		assert.deepEqual(names, ['explain', 'fix', 'docstring', 'tests']);
		assert.equal(proxy.seen.length, calls, 'offering asks no model');
		const explain = explainArguments(findAction(offered, 'explain'));
		assert.deepEqual(explain, { uri, range: GREET, question: 'Explain this code' });
		const events: string[] = [];
		const answer = await runChat(served.rpc, deltas, explain!, (_, delta) => events.push(delta));
		assert.equal(answer, DEFAULT_ANSWER);
		assert.equal(events.join(''), DEFAULT_ANSWER);
	});

	test('Fix: resolve returns a versioned edit of the selection only, which applies', async () => {
		const range = { start: { line: 6, character: 4 }, end: { line: 6, character: 22 } };
		const edit = await actionEdit(served.rpc, uri, range, 'fix');
		assert.ok(edit, 'a fix was offered');
		const change = edit.documentChanges?.[0];
		assert.ok(change && 'textDocument' in change, 'a TextDocumentEdit');
		assert.deepEqual(change.textDocument, { uri, version: 1 });
		const edits = textEdits(edit).get(uri)!;
		assert.deepEqual(edits, [{ range, newText: DEFAULT_ANSWER }]);
		const fixed = applyTextEdits(SOURCE, edits);
		assert.equal(fixed, SOURCE.replace('return shout(name)', DEFAULT_ANSWER));
	});

	test('Fix on a document that changed since the offer is refused (content modified)', async () => {
		const offered = await requestActions(served.rpc, uri, GREET, 'fix');
		const fix = findAction(offered, 'fix');
		assert.ok(fix);
		await served.rpc.sendNotification('textDocument/didChange', {
			textDocument: { uri, version: 2 },
			contentChanges: [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: '# edited\n' }],
		});
		await assert.rejects(resolveAction(served.rpc, fix), (error: unknown) => {
			assert.equal(errorCode(error), CONTENT_MODIFIED);
			return true;
		});
	});

	test('no actions where there is no code', async () => {
		const blank = { start: { line: 3, character: 0 }, end: { line: 3, character: 0 } };
		assert.deepEqual(await requestActions(served.rpc, uri, blank), []);
	});
});

describe('settings changes and status', () => {
	const temp = tempHome();
	let served: Served;
	const test = testWithServerLog(() => served);

	after(async () => {
		await served?.stop();
		temp.cleanup();
	});

	test('a dead endpoint is an error status; new settings bring it back to ready', async () => {
		const path = writeFile(join(temp.ws, 'greet.py'), SOURCE);
		const dead = `http://127.0.0.1:${await freePort()}/v1`;
		served = await startTandem({
			root: temp.ws,
			env: cleanEnv(modelEnv(proxy.url), temp.home),
			initializationOptions: serverSettings(getter({ 'completion.endpoint': dead, 'completion.model': MODEL })),
		});
		await served.waitStatus('ready');
		const uri = served.open(path, SOURCE);
		const started = Date.now();
		assert.deepEqual(inlineItems(await requestInline(served.rpc, { uri, position: IN_STRING, trigger: 'automatic' })), []);
		const error = await served.waitStatus('error');
		assert.match(error.message, /cannot reach/);
		assert.ok(Date.now() - started < 10_000);

		// The user fixes the endpoint in VS Code settings: the whole settings object again.
		const since = served.statuses.length;
		const fixed = serverSettings(getter({ 'completion.endpoint': `${proxy.url}/v1`, 'completion.model': MODEL }));
		await served.rpc.sendNotification('workspace/didChangeConfiguration', { settings: fixed });
		await served.waitStatus('ready', since);
		const items = inlineItems(await requestInline(served.rpc, { uri, position: IN_STRING, trigger: 'invoked' }));
		assert.equal(insertText(items[0]), DEFAULT_ANSWER);
	});

	test('an invalid setting is an error status naming the key and the choices', async () => {
		// The choices the server lists are the ones package.json offers.
		for (const [key, choices] of [
			['provider', PROVIDERS],
			['fim', FIM_TEMPLATES],
		] as const) {
			const since = served.statuses.length;
			await served.rpc.sendNotification('workspace/didChangeConfiguration', {
				settings: { completion: { [key]: 'gpt' } },
			});
			const error = await served.waitStatus('error', since);
			assert.match(error.message, new RegExp(`completion\\.${key}`));
			assert.ok(error.message.endsWith(`is not one of ${choices.join(', ')}`), error.message);
		}
	});

	test('an ignored file is inactive and never sent to the model', async () => {
		const since = served.statuses.length;
		const calls = proxy.seen.length;
		const path = writeFile(join(temp.ws, 'node_modules', 'lib', 'x.py'), SOURCE);
		const uri = served.open(path, SOURCE);
		assert.deepEqual(inlineItems(await requestInline(served.rpc, { uri, position: IN_STRING, trigger: 'invoked' })), []);
		const inactive = await served.waitStatus('inactive', since);
		assert.match(inactive.message, /x\.py/);
		assert.equal(proxy.seen.length, calls);
	});
});

describe('Show context sent: tandem context --json', () => {
	test('the invocation the extension builds prints the prompt for the cursor', async () => {
		const temp = tempHome();
		try {
			const line = '    print("naïve 👋 ")';
			const text = SOURCE.replace('    print("")', line);
			const path = writeFile(join(temp.ws, 'greet.py'), text);
			const character = line.indexOf(' ")') + 1; // after the emoji: UTF-16 units
			const invocation = contextInvocation({
				bin: TANDEM_BIN,
				path,
				line: 5,
				character,
				lineText: line,
				root: temp.ws,
				settings: serverSettings(getter({ 'completion.provider': 'openai', 'completion.model': MODEL, 'completion.endpoint': `${proxy.url}/v1` }), {
					completion: 'sk-context-key',
				}),
			});
			assert.ok(!invocation.args.some((a) => a.includes('sk-context-key')), 'the key is not on the command line');
			assert.equal(invocation.env.TANDEM_API_KEY, 'sk-context-key');
			const { stdout } = await run(invocation.command, invocation.args, {
				cwd: temp.ws,
				env: cleanEnv(invocation.env, temp.home),
			});
			const report = parseContext(stdout);
			assert.equal(report.model, `openai:${MODEL}`);
			const prefix = report.parts.find((p) => p.kind === 'prefix');
			assert.ok(prefix);
			assert.ok(prefix.text.endsWith('print("naïve 👋 '), JSON.stringify(prefix.text));
			const markdown = renderContext(report, 'greet.py:6:17');
			assert.match(markdown, /^# Context sent for greet\.py:6:17/);
			assert.match(markdown, /\| prefix \| \d+ \| greet\.py \|/);
			assert.match(markdown, /```text\n<\|fim_prefix\|>/);
		} finally {
			temp.cleanup();
		}
	});
});
