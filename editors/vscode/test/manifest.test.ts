/**
 * package.json, the source and the bundle agree: every contributed command is
 * registered, every setting read is contributed, the bundle needs nothing but VS Code
 * and Node, and src/protocol stays free of the VS Code API.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DEFAULT_ENABLE, FIM_TEMPLATES, PROVIDERS, settingNames } from '../src/protocol/settings';
import { EXTENSION_DIR } from './helpers';

const manifest = JSON.parse(readFileSync(join(EXTENSION_DIR, 'package.json'), 'utf8'));
// The extension's own sources (not ./protocol, which cannot import vscode): commands are
// registered in more than one file.
const extensionSource = readdirSync(join(EXTENSION_DIR, 'src'))
	.filter((name) => name.endsWith('.ts'))
	.map((name) => readFileSync(join(EXTENSION_DIR, 'src', name), 'utf8'))
	.join('\n');

describe('package.json', () => {
	test('the commands of the issue, each registered by the extension', () => {
		const contributed = manifest.contributes.commands.map((c: { command: string; title: string; category: string }) => {
			assert.equal(c.category, 'Tandem');
			return [c.command, c.title];
		});
		assert.deepEqual(Object.fromEntries(contributed), {
			'tandem.chatAboutSelection': 'Chat about selection',
			'tandem.explainSelection': 'Explain',
			'tandem.fixSelection': 'Fix',
			'tandem.applyFix': 'Apply fix',
			'tandem.discardFix': 'Discard fix',
			'tandem.showContext': 'Show context sent',
			'tandem.restartServer': 'Restart server',
			'tandem.setApiKey': 'Set API key',
			'tandem.showOutput': 'Show log',
		});
		const registered = [...extensionSource.matchAll(/registerCommand\('([^']+)'/g)].map((m) => m[1]);
		assert.deepEqual(registered.sort(), contributed.map(([id]: string[]) => id).sort());
		for (const binding of manifest.contributes.keybindings) {
			assert.ok(registered.includes(binding.command), binding.command);
		}
	});

	test("our command ids never clash with the server's (the client registers those)", () => {
		for (const { command } of manifest.contributes.commands) {
			assert.ok(!['tandem.chat', 'tandem.acceptCompletion'].includes(command));
		}
	});

	test('the settings contributed are exactly the ones read', () => {
		const contributed = Object.keys(manifest.contributes.configuration.properties).sort();
		assert.deepEqual(contributed, settingNames().map((n) => `tandem.${n}`).sort());
		const props = manifest.contributes.configuration.properties;
		assert.deepEqual(props['tandem.completion.provider'].enum, ['', ...PROVIDERS]);
		assert.deepEqual(props['tandem.chat.provider'].enum, ['', ...PROVIDERS]);
		assert.deepEqual(props['tandem.completion.fim'].enum, ['', ...FIM_TEMPLATES]);
		assert.deepEqual(props['tandem.enable'].default, DEFAULT_ENABLE);
		for (const name of contributed) {
			assert.ok(!/key|secret|token$/i.test(name.replace('Tokens', '')), `no secret in settings: ${name}`);
		}
	});

	test('the extension writes no settings (the API key lives in SecretStorage only)', () => {
		assert.ok(!/\.update\(/.test(extensionSource));
		assert.match(extensionSource, /secrets\.store\(SECRET_KEYS\[section\]/);
	});

	test('engines match the language client; the bundle is the entry point', () => {
		const client = JSON.parse(readFileSync(join(EXTENSION_DIR, 'node_modules', 'vscode-languageclient', 'package.json'), 'utf8'));
		assert.equal(manifest.engines.vscode, client.engines.vscode);
		assert.ok(Number(client.version.split('.')[0]) >= 10, 'vscode-languageclient 10 or newer');
		const types = JSON.parse(readFileSync(join(EXTENSION_DIR, 'node_modules', '@types', 'vscode', 'package.json'), 'utf8'));
		assert.equal(`^${types.version}`, manifest.engines.vscode, '@types/vscode is the oldest supported API');
		assert.equal(manifest.main, './dist/extension.js');
		const ignore = readFileSync(join(EXTENSION_DIR, '.vscodeignore'), 'utf8');
		for (const line of ['node_modules/**', 'src/**', 'test/**']) {
			assert.ok(ignore.split('\n').includes(line), `.vscodeignore has ${line}`);
		}
	});
});

describe('the bundle and the protocol modules', () => {
	test('dist/extension.js requires only vscode and Node built-ins', () => {
		const bundle = join(EXTENSION_DIR, 'dist', 'extension.js');
		assert.ok(existsSync(bundle), 'dist/extension.js is missing: run `npm run build` (npm test does)');
		const text = readFileSync(bundle, 'utf8');
		const required = new Set([...text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
		assert.ok(required.has('vscode'));
		const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
		const others = [...required].filter((m) => m !== 'vscode' && !builtins.has(m));
		assert.deepEqual(others, []);
		assert.match(text, /tandem\/chatDelta/);
	});

	test('src/protocol imports no vscode API', () => {
		const folder = join(EXTENSION_DIR, 'src', 'protocol');
		for (const name of readdirSync(folder)) {
			const text = readFileSync(join(folder, name), 'utf8');
			assert.ok(!/from\s+['"]vscode['"]|require\(['"]vscode['"]\)|from\s+['"]vscode-languageclient/.test(text), name);
		}
	});
});
