/**
 * "Tandem: Show context sent": `tandem context --json PATH:LINE:COL` for the cursor,
 * shown as markdown.
 *
 * The command reads the file from disk and the same settings layers as the server;
 * the extension's completion settings are passed as flags, and the API key (which
 * `context` does not need to build a prompt, but a provider may for its tokenizer)
 * through the environment, never on the command line.
 */
import type { ServerSettings } from './settings';

export interface ContextInvocation {
	command: string;
	args: string[];
	/** Variables to add to the inherited environment. */
	env: Record<string, string>;
}

export interface ContextRequest {
	bin: string;
	/** The file, as a filesystem path. */
	path: string;
	/** 0-based line and UTF-16 character (an LSP / VS Code position). */
	line: number;
	character: number;
	/** The text of that line, to turn UTF-16 units into the CLI's character columns. */
	lineText: string;
	root?: string;
	settings?: ServerSettings;
}

/** The CLI's 1-based column (it counts characters, i.e. code points) for a UTF-16 offset. */
export function cliColumn(lineText: string, utf16Character: number): number {
	return Array.from(lineText.slice(0, utf16Character)).length + 1;
}

const FLAGS: ReadonlyArray<readonly [key: string, flag: string]> = [
	['provider', '--provider'],
	['endpoint', '--endpoint'],
	['model', '--model'],
	['fim', '--fim'],
	['context_tokens', '--budget'],
	['max_tokens', '--max-tokens'],
];

export function contextInvocation(request: ContextRequest): ContextInvocation {
	const location = `${request.path}:${request.line + 1}:${cliColumn(request.lineText, request.character)}`;
	const args = ['context', '--json'];
	if (request.root) {
		args.push('--root', request.root);
	}
	const env: Record<string, string> = {};
	const completion = request.settings?.completion ?? {};
	for (const [key, flag] of FLAGS) {
		const value = completion[key];
		if (value !== undefined && value !== null && value !== '') {
			args.push(flag, String(value));
		}
	}
	const timeout = request.settings?.timeout;
	if (timeout !== undefined) {
		args.push('--timeout', String(timeout));
	}
	if (typeof completion.api_key === 'string') {
		env.TANDEM_API_KEY = completion.api_key;
	}
	if (typeof completion.api_version === 'string') {
		env.TANDEM_AZURE_API_VERSION = completion.api_version;
	}
	args.push(location);
	return { command: request.bin, args, env };
}

export interface ContextPart {
	kind: string;
	path: string;
	text: string;
	tokens: number;
}

export interface ContextReport {
	prompt: unknown;
	model: string;
	template: string;
	tokens: number;
	budget: number;
	tokenizer: string;
	exact: boolean;
	multiline: boolean;
	parts: ContextPart[];
	dropped: ContextPart[];
}

export function parseContext(stdout: string): ContextReport {
	const value = JSON.parse(stdout) as Partial<ContextReport>;
	if (typeof value !== 'object' || value === null || !Array.isArray(value.parts)) {
		throw new Error('tandem context --json printed something that is not a context report');
	}
	return { dropped: [], ...value } as ContextReport;
}

/** A fence longer than any run of backticks in `text`. */
export function fence(text: string, info = ''): string {
	const longest = Math.max(2, ...Array.from(text.matchAll(/`+/g), (m) => m[0].length));
	const ticks = '`'.repeat(longest + 1);
	return `${ticks}${info}\n${text}${text.endsWith('\n') ? '' : '\n'}${ticks}`;
}

function cell(text: string): string {
	return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderContext(report: ContextReport, location: string): string {
	const lines = [
		`# Context sent for ${location}`,
		'',
		`- model: \`${report.model}\`, template \`${report.template}\``,
		`- ${report.tokens} of ${report.budget} tokens (${report.tokenizer}${report.exact ? '' : ', estimated'})`,
		`- ${report.multiline ? 'block' : 'single line'} completion`,
		'',
		'| part | tokens | from |',
		'|---|---:|---|',
		...report.parts.map((p) => `| ${cell(p.kind)} | ${p.tokens} | ${cell(p.path)} |`),
	];
	if (report.dropped.length > 0) {
		lines.push('', 'Left out to fit the budget:', '');
		lines.push(...report.dropped.map((p) => `- ${p.kind} (${p.tokens} tokens) from ${p.path}`));
	}
	const prompt =
		typeof report.prompt === 'string' ? report.prompt : JSON.stringify(report.prompt, null, 2);
	lines.push('', '## Prompt', '', fence(prompt, typeof report.prompt === 'string' ? 'text' : 'json'), '');
	return lines.join('\n');
}
