/** The protocol modules on their own: mappings and assembly with no server. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyTextEdits, chatArgumentsOf, codeActionParams, editOutside, explainArguments, rangeOrLine, textEdits } from '../src/protocol/actions';
import { ChatDeltas, ChatStream, answerOf, chatCommandParams } from '../src/protocol/chat';
import { chatPage, escapeHtml, rangeLabel, renderMarkdown, renderTranscript } from '../src/protocol/chatView';
import { cliColumn, contextInvocation, fence, renderContext } from '../src/protocol/context';
import { CONTENT_MODIFIED, describeError, isCancellation } from '../src/protocol/errors';
import { inlineItems, inlineParams, insertText } from '../src/protocol/inline';
import {
	DEFAULT_ENABLE,
	chatHasOwnProvider,
	languageEnabled,
	redactText,
	redacted,
	resolvePath,
	serverCommand,
	serverSettings,
	settingNames,
} from '../src/protocol/settings';
import { rpcOf } from '../src/protocol/rpc';
import { parseStatus, statusView } from '../src/protocol/status';

const get = (values: Record<string, unknown>) => (name: string) => values[name];
const RANGE = { start: { line: 1, character: 0 }, end: { line: 2, character: 3 } };

describe('settings → server settings', () => {
	test('VS Code names become the config file keys; unset values are left out', () => {
		const settings = serverSettings(
			get({
				'completion.provider': 'ollama',
				'completion.endpoint': ' http://127.0.0.1:11434 ',
				'completion.model': 'qwen2.5-coder:1.5b-base',
				'completion.fim': 'qwen',
				'completion.maxTokens': 64,
				'completion.temperature': 0,
				'completion.contextTokens': 1024,
				'completion.apiVersion': '',
				'chat.model': 'qwen2.5-coder:7b-instruct',
				'chat.maxTokens': null,
				'chat.fim': 'starcoder', // not a chat setting: ignored
				timeout: 20,
				debounceMs: 0,
				completionFallback: false,
				maxConcurrent: undefined,
			}),
		);
		assert.deepEqual(settings, {
			completion: {
				provider: 'ollama',
				endpoint: 'http://127.0.0.1:11434',
				model: 'qwen2.5-coder:1.5b-base',
				fim: 'qwen',
				max_tokens: 64,
				temperature: 0,
				context_tokens: 1024,
			},
			chat: { model: 'qwen2.5-coder:7b-instruct' },
			timeout: 20,
			debounce_ms: 0,
			completion_fallback: false,
		});
	});

	test('nothing set: an empty object, so config files and TANDEM_* apply', () => {
		assert.deepEqual(serverSettings(get({})), {});
	});

	test('API keys from SecretStorage go into their sections as api_key', () => {
		const settings = serverSettings(get({}), { completion: ' sk-one ', chat: 'sk-two' });
		assert.deepEqual(settings, { completion: { api_key: 'sk-one' }, chat: { api_key: 'sk-two' } });
		assert.deepEqual(serverSettings(get({}), { completion: '', chat: undefined }), {});
	});

	test('redacted settings hide the keys and leave the rest', () => {
		const settings = serverSettings(get({ 'completion.model': 'm' }), { completion: 'sk-secret' });
		assert.deepEqual(redacted(settings), { completion: { model: 'm', api_key: '****' } });
		assert.equal(settings.completion?.api_key, 'sk-secret', 'the original is untouched');
		assert.ok(!JSON.stringify(redacted(settings)).includes('sk-secret'));
	});

	test('log text has every key masked, plain or JSON-escaped', () => {
		const secrets = { completion: 'sk-abc"def', chat: 'xyz' };
		const text = `key sk-abc"def and "api_key":"sk-abc\\"def" and xyz`;
		assert.equal(redactText(text, secrets), 'key **** and "api_key":"****" and xyz');
		assert.equal(redactText('nothing', {}), 'nothing');
	});

	test('chat needs its own key only with a provider of its own', () => {
		assert.equal(chatHasOwnProvider(get({})), false);
		assert.equal(chatHasOwnProvider(get({ 'completion.provider': 'openai', 'chat.provider': 'openai' })), false);
		assert.equal(chatHasOwnProvider(get({ 'completion.provider': 'ollama', 'chat.provider': 'openai' })), true);
	});

	test('per-language enable: own entry, then "*", then on', () => {
		assert.equal(languageEnabled(DEFAULT_ENABLE, 'python'), true);
		assert.equal(languageEnabled(DEFAULT_ENABLE, 'plaintext'), false);
		assert.equal(languageEnabled(DEFAULT_ENABLE, 'markdown'), false);
		assert.equal(languageEnabled({ '*': false, go: true }, 'go'), true);
		assert.equal(languageEnabled({ '*': false, go: true }, 'rust'), false);
		assert.equal(languageEnabled(undefined, 'rust'), true);
		assert.equal(languageEnabled({ rust: 'yes' }, 'rust'), true);
	});

	test('the server command: tandem.path with ~ and ${workspaceFolder}, and the log level', () => {
		assert.deepEqual(serverCommand(get({})), { command: 'tandem', args: ['serve'] });
		assert.deepEqual(serverCommand(get({ path: '~/bin/tandem', logLevel: 'INFO' }), { home: '/home/me' }), {
			command: '/home/me/bin/tandem',
			args: ['serve', '--log-level', 'INFO'],
		});
		assert.equal(
			resolvePath('${workspaceFolder}/.venv/bin/tandem', { workspaceFolder: '/src/app' }),
			'/src/app/.venv/bin/tandem',
		);
		assert.equal(resolvePath('  '), 'tandem');
		assert.deepEqual(serverCommand(get({ logLevel: 'LOUD' })).args, ['serve']);
	});

	test('the setting names cover both sections and the top-level keys', () => {
		const names = settingNames();
		assert.ok(names.includes('completion.fim'));
		assert.ok(!names.includes('chat.fim'));
		for (const name of ['path', 'enable', 'chat.provider', 'chat.endpoint', 'chat.model', 'timeout', 'maxConcurrent']) {
			assert.ok(names.includes(name), name);
		}
	});
});

describe('status → status bar', () => {
	test('each server state has its icon; the message is the tooltip', () => {
		assert.deepEqual(statusView({ state: 'ready', message: 'openai:qwen2.5-coder' }), {
			text: '$(check) Tandem',
			tooltip: 'Tandem: ready — openai:qwen2.5-coder\nClick to show the log',
		});
		assert.equal(statusView({ state: 'busy', message: 'asking x' }).text, '$(loading~spin) Tandem');
		assert.equal(statusView({ state: 'inactive', message: 'x.py: ignored' }).text, '$(circle-slash) Tandem');
		const error = statusView({ state: 'error', message: 'cannot reach\n http://x' });
		assert.equal(error.text, '$(error) Tandem');
		assert.equal(error.background, 'statusBarItem.errorBackground');
		assert.equal(error.tooltip, 'Tandem: error — cannot reach http://x\nClick to show the log');
		assert.equal(statusView({ state: 'stopped', message: '' }).background, 'statusBarItem.warningBackground');
	});

	test('notifications are checked: unknown states become errors', () => {
		assert.deepEqual(parseStatus({ state: 'busy', message: 'm' }), { state: 'busy', message: 'm' });
		assert.deepEqual(parseStatus({ state: 'ready' }), { state: 'ready', message: '' });
		assert.equal(parseStatus({ state: 'sleepy' }).state, 'error');
		assert.equal(parseStatus(null).state, 'error');
	});
});

describe('chat assembly', () => {
	test('a stream adds up its deltas and reports the text so far', () => {
		const seen: Array<[string, string]> = [];
		const stream = new ChatStream('t', (text, delta) => seen.push([text, delta]));
		stream.push('Hel');
		stream.push('lo');
		assert.equal(stream.text, 'Hello');
		assert.equal(stream.finish('Hello'), 'Hello');
		assert.deepEqual(seen, [['Hel', 'Hel'], ['Hello', 'lo']]);
		assert.equal(stream.deltas, 2);
	});

	test('the final answer wins when the deltas do not add up to it', () => {
		const seen: string[] = [];
		const stream = new ChatStream('t', (text) => seen.push(text));
		stream.push('Hel');
		assert.equal(stream.finish('Hello!'), 'Hello!');
		assert.equal(stream.text, 'Hello!');
		assert.deepEqual(seen, ['Hel', 'Hello!']);
	});

	test('the router delivers by token and counts strays', () => {
		const deltas = new ChatDeltas();
		const a: string[] = [];
		const b: string[] = [];
		const first = deltas.open((t) => a.push(t));
		const second = deltas.open((t) => b.push(t));
		assert.notEqual(first.token, second.token);
		assert.equal(deltas.handle({ token: second.token, delta: 'B' }), true);
		assert.equal(deltas.handle({ token: first.token, delta: 'A' }), true);
		assert.equal(deltas.handle({ token: 'other', delta: 'x' }), false);
		assert.equal(deltas.handle({ token: first.token }), false);
		assert.deepEqual([a, b], [['A'], ['B']]);
		deltas.close(first);
		assert.equal(deltas.handle({ token: first.token, delta: 'late' }), false);
		assert.equal(deltas.unmatched, 3);
		assert.equal(deltas.openStreams, 1);
	});

	test('the command params: one argument; history only when there is some', () => {
		assert.deepEqual(chatCommandParams({ uri: 'file:///a.py', range: RANGE, question: 'Why?', token: 't1', history: [] }), {
			command: 'tandem.chat',
			arguments: [{ uri: 'file:///a.py', range: RANGE, question: 'Why?', token: 't1' }],
		});
		const history = [
			{ role: 'user' as const, content: 'q' },
			{ role: 'assistant' as const, content: 'a' },
		];
		assert.deepEqual(chatCommandParams({ uri: 'u', range: RANGE, question: 'q2', history }).arguments[0].history, history);
	});

	test('an answer must be {"answer": string}', () => {
		assert.equal(answerOf({ answer: 'x' }), 'x');
		assert.throws(() => answerOf(null), /without an answer/);
		assert.throws(() => answerOf({ answer: 1 }), /without an answer/);
	});

	test("Explain's command carries the chat arguments", () => {
		const args = { uri: 'file:///a.py', range: RANGE, question: 'Explain this code' };
		const action = { title: 'Tandem: Explain', command: { title: 'Tandem: Explain', command: 'tandem.chat', arguments: [args] } };
		assert.deepEqual(explainArguments(action), args);
		assert.equal(explainArguments({ title: 'x', command: 'other.command' }), undefined);
		assert.equal(chatArgumentsOf([{ uri: 'u' }]), undefined);
		assert.equal(chatArgumentsOf(undefined), undefined);
	});
});

describe('the connection adapter', () => {
	test('a request without a token sends its params alone (never [params, undefined])', async () => {
		const calls: unknown[][] = [];
		const rpc = rpcOf({
			sendRequest: async (...args: unknown[]) => {
				calls.push(args);
				return 'ok';
			},
			sendNotification: () => undefined,
			onNotification: () => ({ dispose: () => undefined }),
		});
		const token = { isCancellationRequested: false, onCancellationRequested: () => ({ dispose: () => undefined }) };
		assert.equal(await rpc.sendRequest('m', { a: 1 }), 'ok');
		await rpc.sendRequest('m', { a: 2 }, undefined);
		await rpc.sendRequest('m', { a: 3 }, token);
		assert.deepEqual(calls, [['m', { a: 1 }], ['m', { a: 2 }], ['m', { a: 3 }, token]]);
	});
});

describe('inline completion requests', () => {
	test('params for the cursor with the trigger kind (LSP: 1 invoked, 2 automatic)', () => {
		const params = inlineParams({ uri: 'file:///a.py', position: { line: 3, character: 7 }, trigger: 'invoked' });
		assert.deepEqual(params, {
			textDocument: { uri: 'file:///a.py' },
			position: { line: 3, character: 7 },
			context: { triggerKind: 1, selectedCompletionInfo: undefined },
		});
		const typing = inlineParams({
			uri: 'u',
			position: { line: 0, character: 0 },
			trigger: 'automatic',
			selected: { range: RANGE, text: 'foo' },
		});
		assert.deepEqual(typing.context, { triggerKind: 2, selectedCompletionInfo: { range: RANGE, text: 'foo' } });
	});

	test('answers: a list, an array, or nothing', () => {
		const item = { insertText: 'x', range: RANGE };
		assert.deepEqual(inlineItems({ items: [item] }), [item]);
		assert.deepEqual(inlineItems([item]), [item]);
		assert.deepEqual(inlineItems(null), []);
		assert.equal(insertText({ insertText: { kind: 'snippet', value: 'a$0' } }), 'a$0');
	});
});

describe('code actions and edits', () => {
	test('params ask for one kind', () => {
		assert.deepEqual(codeActionParams('u', RANGE, 'fix').context.only, ['quickfix']);
		assert.deepEqual(codeActionParams('u', RANGE, 'explain').context.only, ['']);
		assert.equal(codeActionParams('u', RANGE).context.only, undefined);
	});

	test('text edits from both WorkspaceEdit forms, applied in UTF-16 units', () => {
		const edit = {
			documentChanges: [
				{ textDocument: { uri: 'u', version: 3 }, edits: [{ range: { start: { line: 1, character: 2 }, end: { line: 1, character: 4 } }, newText: 'XY' }] },
			],
			changes: { v: [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, newText: '# ' }] },
		};
		const edits = textEdits(edit);
		assert.deepEqual([...edits.keys()].sort(), ['u', 'v']);
		assert.equal(applyTextEdits('a\n👋ab\n', edits.get('u')!), 'a\n👋XY\n');
		assert.equal(applyTextEdits('one\ntwo', edits.get('v')!), '# one\ntwo');
	});

	test('an edit of the selection passes; anything outside it is named', () => {
		const at = (a: number, b: number, c: number, d: number) => ({ start: { line: a, character: b }, end: { line: c, character: d } });
		const selection = at(2, 4, 5, 0);
		const versioned = (range: ReturnType<typeof at>, uri = 'file:///a.py') => ({
			documentChanges: [{ textDocument: { uri, version: 3 }, edits: [{ range, newText: 'x' }] }],
		});
		assert.equal(editOutside(versioned(selection), 'file:///a.py', selection), undefined);
		assert.equal(editOutside(versioned(at(3, 0, 4, 2)), 'file:///a.py', selection), undefined);
		assert.equal(editOutside({ changes: { 'file:///a.py': [{ range: at(2, 4, 2, 4), newText: '#' }] } }, 'file:///a.py', selection), undefined);
		assert.equal(editOutside(versioned(at(2, 3, 5, 0)), 'file:///a.py', selection), 'it edits 3:4-6:1, outside the selection 3:5-6:1');
		assert.equal(editOutside(versioned(at(2, 4, 5, 1)), 'file:///a.py', selection), 'it edits 3:5-6:2, outside the selection 3:5-6:1');
		assert.equal(editOutside(versioned(selection, 'file:///b.py'), 'file:///a.py', selection), 'it edits another file (file:///b.py)');
		const create = { documentChanges: [{ kind: 'create' as const, uri: 'file:///c.py' }, ...versioned(selection).documentChanges] };
		assert.equal(editOutside(create, 'file:///a.py', selection), 'it would create a file');
	});

	test('an empty selection stands for its whole line', () => {
		const cursor = { start: { line: 4, character: 2 }, end: { line: 4, character: 2 } };
		assert.deepEqual(rangeOrLine(cursor, 10), { start: { line: 4, character: 0 }, end: { line: 4, character: 10 } });
		assert.deepEqual(rangeOrLine(RANGE, 10), RANGE);
	});

	test('errors become one line; cancellation is recognised', () => {
		assert.match(describeError(Object.assign(new Error('x changed'), { code: CONTENT_MODIFIED })), /document changed/);
		assert.equal(describeError(new Error('cannot\n reach')), 'cannot reach');
		assert.equal(isCancellation({ code: -32800 }), true);
	});
});

describe('context view', () => {
	test('CLI columns count characters, VS Code counts UTF-16 units', () => {
		assert.equal(cliColumn('abc', 0), 1);
		assert.equal(cliColumn('abc', 3), 4);
		assert.equal(cliColumn('👋x', 2), 2);
		assert.equal(cliColumn('👋x', 3), 3);
	});

	test('the invocation passes settings as flags and the key in the environment', () => {
		const invocation = contextInvocation({
			bin: '/venv/bin/tandem',
			path: '/ws/a.py',
			line: 9,
			character: 4,
			lineText: '    x',
			root: '/ws',
			settings: { completion: { provider: 'openai', model: 'm', context_tokens: 512, api_key: 'sk-x' }, timeout: 5 },
		});
		assert.deepEqual(invocation, {
			command: '/venv/bin/tandem',
			args: ['context', '--json', '--root', '/ws', '--provider', 'openai', '--model', 'm', '--budget', '512', '--timeout', '5', '/ws/a.py:10:5'],
			env: { TANDEM_API_KEY: 'sk-x' },
		});
	});

	test('fences outlast the backticks inside', () => {
		assert.equal(fence('a', 'text'), '```text\na\n```');
		assert.equal(fence('x ```` y\n'), '`````\nx ```` y\n`````');
	});

	test('a report renders as a table of parts and the prompt', () => {
		const markdown = renderContext(
			{
				prompt: { messages: [{ role: 'user', content: 'hi' }] },
				model: 'openai:m',
				template: 'chat',
				tokens: 10,
				budget: 100,
				tokenizer: 'est',
				exact: false,
				multiline: true,
				parts: [{ kind: 'prefix', path: 'a|b.py', text: 'x', tokens: 3 }],
				dropped: [{ kind: 'snippet', path: 'c.py', text: 'y', tokens: 50 }],
			},
			'a.py:1:1',
		);
		assert.match(markdown, /\| prefix \| 3 \| a\\\|b\.py \|/);
		assert.match(markdown, /- snippet \(50 tokens\) from c\.py/);
		assert.match(markdown, /```json\n\{\n {2}"messages"/);
		assert.match(markdown, /block completion/);
	});
});

describe('chat panel rendering', () => {
	test('markdown: code fences, headings, lists, inline code; everything escaped', () => {
		const html = renderMarkdown('# Title\n\nIt **greets** with `print("<b>")`.\n\n- one\n- two\n\n```python\nif a < b:\n    pass\n```\n');
		assert.equal(
			html,
			[
				'<h1>Title</h1>',
				'<p>It <strong>greets</strong> with <code>print(&quot;&lt;b&gt;&quot;)</code>.</p>',
				'<ul><li>one</li><li>two</li></ul>',
				'<pre><code class="language-python">if a &lt; b:\n    pass</code></pre>',
			].join('\n'),
		);
	});

	test('an unclosed fence (still streaming) is code to the end', () => {
		assert.equal(renderMarkdown('Here:\n```js\nlet x = 1;'), '<p>Here:</p>\n<pre><code class="language-js">let x = 1;</code></pre>');
	});

	test('no markup from the model gets through', () => {
		const html = renderMarkdown('<script>alert(1)</script> <img src=x onerror=alert(1)> [a](javascript:alert(1))');
		assert.ok(!html.includes('<script'));
		assert.ok(!html.includes('<img'));
		assert.ok(!html.includes('href'));
		assert.equal(escapeHtml(`<"'&>`), '&lt;&quot;&#39;&amp;&gt;');
	});

	test('the transcript shows questions, answers, a waiting mark and errors', () => {
		const html = renderTranscript('Tandem: Chat — a.py:1-3', [
			{ question: 'Why <this>?', answer: 'Because.' },
			{ question: 'And?', answer: '', pending: true },
			{ question: 'Then?', answer: 'Part', error: 'Stopped.' },
		]);
		assert.match(html, /<div class="question">Why &lt;this&gt;\?<\/div>/);
		assert.match(html, /<div class="answer pending"><p class="waiting">…<\/p><\/div>/);
		assert.match(html, /<p>Part<\/p><p class="error">Stopped\.<\/p>/);
	});

	test('the panel names the lines asked about', () => {
		const range = (a: number, b: number, c: number) => ({ start: { line: a, character: 0 }, end: { line: b, character: c } });
		assert.equal(rangeLabel('greet.py', range(4, 7, 0)), 'greet.py:5-7');
		assert.equal(rangeLabel('greet.py', range(4, 6, 3)), 'greet.py:5-7');
		assert.equal(rangeLabel('greet.py', range(4, 4, 9)), 'greet.py:5');
		assert.equal(rangeLabel('greet.py', range(4, 5, 0)), 'greet.py:5');
	});

	test('the page allows only its own nonce-tagged script and style', () => {
		const page = chatPage({ nonce: 'abc123', cspSource: 'vscode-resource:', html: '<p>x</p>' });
		assert.match(page, /script-src 'nonce-abc123'/);
		assert.match(page, /default-src 'none'/);
		assert.equal((page.match(/<script nonce="abc123">/g) ?? []).length, 1);
		assert.equal((page.match(/<script/g) ?? []).length, 1);
		assert.match(page, /<div id="transcript"><p>x<\/p><\/div>/);
	});
});
