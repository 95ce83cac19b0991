/**
 * VS Code settings (`tandem.*`) → the server's settings object.
 *
 * The server takes the keys of its config file (server/tandem/config.py): sections
 * `completion` and `chat` with provider, endpoint, model, fim, max_tokens, temperature,
 * context_tokens, api_key, api_version, and the top-level timeout, debounce_ms,
 * completion_fallback, max_concurrent. It receives them as `initializationOptions` and
 * again, whole, with every `workspace/didChangeConfiguration`. A setting left unset is
 * left out, so the user's config file, the workspace's `.tandem.toml` and `TANDEM_*`
 * variables still apply. API keys come from SecretStorage, never from settings.
 */

export const PROVIDERS = ['local', 'openai', 'azure', 'ollama', 'llamacpp'] as const;
export const FIM_TEMPLATES = [
	'starcoder',
	'codellama',
	'deepseek',
	'qwen',
	'codestral',
	'codegemma',
	'chat',
	'prefix',
] as const;
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const;
export const SECTIONS = ['completion', 'chat'] as const;
export type Section = (typeof SECTIONS)[number];

/** The VS Code setting (under `tandem.<section>.`) and the server key it maps to. */
export const MODEL_SETTINGS: ReadonlyArray<readonly [setting: string, key: string]> = [
	['provider', 'provider'],
	['endpoint', 'endpoint'],
	['model', 'model'],
	['fim', 'fim'],
	['maxTokens', 'max_tokens'],
	['temperature', 'temperature'],
	['contextTokens', 'context_tokens'],
	['apiVersion', 'api_version'],
];
/** The FIM template only shapes completion prompts; chat models take messages. */
export const CHAT_SKIPS = new Set(['fim']);

export const TOP_SETTINGS: ReadonlyArray<readonly [setting: string, key: string]> = [
	['timeout', 'timeout'],
	['debounceMs', 'debounce_ms'],
	['completionFallback', 'completion_fallback'],
	['maxConcurrent', 'max_concurrent'],
];

/** Every `tandem.*` setting the extension reads (package.json contributes exactly these). */
export function settingNames(): string[] {
	const names = ['path', 'logLevel', 'enable'];
	for (const section of SECTIONS) {
		for (const [setting] of MODEL_SETTINGS) {
			if (section === 'chat' && CHAT_SKIPS.has(setting)) {
				continue;
			}
			names.push(`${section}.${setting}`);
		}
	}
	return names.concat(TOP_SETTINGS.map(([setting]) => setting));
}

export interface Secrets {
	/** The completion model's key; the chat section inherits it unless it has its own provider. */
	completion?: string;
	/** A key for the chat model only (when chat uses another provider). */
	chat?: string;
}

/** Where each key lives in SecretStorage. */
export const SECRET_KEYS: Record<Section, string> = {
	completion: 'tandem.apiKey.completion',
	chat: 'tandem.apiKey.chat',
};

/** Reads one `tandem.*` setting, e.g. `vscode.workspace.getConfiguration('tandem').get`. */
export type SettingGetter = (name: string) => unknown;

export type ServerSettings = Record<string, unknown> & {
	completion?: Record<string, unknown>;
	chat?: Record<string, unknown>;
};

function given(value: unknown): boolean {
	if (value === undefined || value === null) {
		return false;
	}
	return typeof value !== 'string' || value.trim() !== '';
}

function clean(value: unknown): unknown {
	return typeof value === 'string' ? value.trim() : value;
}

/** The server settings for the current VS Code settings and secrets. */
export function serverSettings(get: SettingGetter, secrets: Secrets = {}): ServerSettings {
	const out: ServerSettings = {};
	for (const section of SECTIONS) {
		const values: Record<string, unknown> = {};
		for (const [setting, key] of MODEL_SETTINGS) {
			if (section === 'chat' && CHAT_SKIPS.has(setting)) {
				continue;
			}
			const value = get(`${section}.${setting}`);
			if (given(value)) {
				values[key] = clean(value);
			}
		}
		const secret = secrets[section];
		if (given(secret)) {
			values.api_key = clean(secret);
		}
		if (Object.keys(values).length > 0) {
			out[section] = values;
		}
	}
	for (const [setting, key] of TOP_SETTINGS) {
		const value = get(setting);
		if (given(value)) {
			out[key] = clean(value);
		}
	}
	return out;
}

/** The same settings with secrets masked, for logs. */
export function redacted(settings: ServerSettings): ServerSettings {
	const copy: ServerSettings = { ...settings };
	for (const section of SECTIONS) {
		const values = settings[section];
		if (values && 'api_key' in values) {
			copy[section] = { ...values, api_key: '****' };
		}
	}
	return copy;
}

/**
 * `text` with every API key replaced by `****`: for everything written to the output
 * channel, which VS Code also keeps in its log files — including the language client's
 * message trace (output log level Trace with `tandem.trace.server: verbose`), which
 * would otherwise show the settings sent to the server.
 */
export function redactText(text: string, secrets: Secrets): string {
	let out = text;
	for (const value of Object.values(secrets)) {
		const secret = typeof value === 'string' ? value.trim() : '';
		if (secret.length < 4) {
			continue;
		}
		for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1)])) {
			out = out.split(form).join('****');
		}
	}
	return out;
}

/** Whether chat has a provider of its own, and so needs its own key. */
export function chatHasOwnProvider(get: SettingGetter): boolean {
	const chat = get('chat.provider');
	return given(chat) && clean(chat) !== clean(get('completion.provider'));
}

/**
 * Whether completions are on for a language: `tandem.enable` maps language ids to
 * booleans, with `"*"` for the rest (as GitHub Copilot's `github.copilot.enable`).
 */
export function languageEnabled(enable: unknown, languageId: string): boolean {
	if (!enable || typeof enable !== 'object') {
		return true;
	}
	const map = enable as Record<string, unknown>;
	const own = map[languageId];
	if (typeof own === 'boolean') {
		return own;
	}
	const rest = map['*'];
	return typeof rest === 'boolean' ? rest : true;
}

export const DEFAULT_ENABLE: Record<string, boolean> = {
	'*': true,
	plaintext: false,
	markdown: false,
	scminput: false,
};

export interface ServerCommand {
	command: string;
	args: string[];
}

/**
 * How to start the server: `tandem.path` (default `tandem`, found on PATH), with `~`
 * and `${workspaceFolder}` expanded.
 */
export function serverCommand(
	get: SettingGetter,
	where: { home?: string; workspaceFolder?: string } = {},
): ServerCommand {
	const command = resolvePath(get('path'), where);
	const level = get('logLevel');
	const args = ['serve'];
	if (typeof level === 'string' && (LOG_LEVELS as readonly string[]).includes(level)) {
		args.push('--log-level', level);
	}
	return { command, args };
}

export function resolvePath(
	value: unknown,
	where: { home?: string; workspaceFolder?: string } = {},
): string {
	let path = typeof value === 'string' && value.trim() ? value.trim() : 'tandem';
	if (where.home && (path === '~' || path.startsWith('~/'))) {
		path = where.home + path.slice(1);
	}
	if (where.workspaceFolder) {
		path = path.split('${workspaceFolder}').join(where.workspaceFolder);
	}
	return path;
}

/** Settings whose change needs a new server process (the others are sent to it live). */
export const RESTART_SETTINGS = ['path', 'logLevel'];
