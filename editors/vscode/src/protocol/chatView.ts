/**
 * The chat panel's HTML: a small markdown renderer (everything escaped; no links, no
 * raw HTML, so a model's answer cannot run script in the webview) and the page with a
 * follow-up box. The extension re-renders the transcript as deltas arrive.
 */

export function escapeHtml(text: string): string {
	return text
		.replace(/&/g, '&amp;')
		.replace(/</g, '&lt;')
		.replace(/>/g, '&gt;')
		.replace(/"/g, '&quot;')
		.replace(/'/g, '&#39;');
}

/** Inline markdown on escaped text: `code`, **bold**, *emphasis*. */
function inline(text: string): string {
	const parts = text.split(/(`+[^`]*?`+)/g);
	return parts
		.map((part, i) => {
			if (i % 2 === 1) {
				const code = part.replace(/^`+|`+$/g, '');
				return `<code>${escapeHtml(code)}</code>`;
			}
			return escapeHtml(part)
				.replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
				.replace(/(^|[^*\w])\*([^*\s][^*]*?)\*(?!\w)/g, '$1<em>$2</em>');
		})
		.join('');
}

/**
 * Markdown → HTML for answers: fenced code (an unclosed fence, while streaming, is
 * code to the end), headings, lists, block quotes and paragraphs.
 */
export function renderMarkdown(markdown: string): string {
	const out: string[] = [];
	const lines = markdown.replace(/\r\n/g, '\n').split('\n');
	let paragraph: string[] = [];
	let list: { tag: 'ul' | 'ol'; items: string[] } | undefined;

	const flush = (): void => {
		if (paragraph.length > 0) {
			out.push(`<p>${paragraph.map(inline).join('<br>')}</p>`);
			paragraph = [];
		}
		if (list) {
			out.push(`<${list.tag}>${list.items.map((item) => `<li>${inline(item)}</li>`).join('')}</${list.tag}>`);
			list = undefined;
		}
	};

	for (let i = 0; i < lines.length; i++) {
		const line = lines[i];
		const open = /^\s*(`{3,}|~{3,})\s*([\w+#.-]*)/.exec(line);
		if (open) {
			flush();
			const marker = open[1];
			const language = open[2];
			const body: string[] = [];
			i += 1;
			while (i < lines.length && !lines[i].trim().startsWith(marker)) {
				body.push(lines[i]);
				i += 1;
			}
			const cls = language ? ` class="language-${escapeHtml(language)}"` : '';
			out.push(`<pre><code${cls}>${escapeHtml(body.join('\n'))}</code></pre>`);
			continue;
		}
		const heading = /^(#{1,6})\s+(.*)$/.exec(line);
		if (heading) {
			flush();
			const level = heading[1].length;
			out.push(`<h${level}>${inline(heading[2])}</h${level}>`);
			continue;
		}
		const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
		const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
		if (bullet || numbered) {
			const tag = bullet ? 'ul' : 'ol';
			if (paragraph.length > 0 || (list && list.tag !== tag)) {
				flush();
			}
			list ??= { tag, items: [] };
			list.items.push((bullet ?? numbered)![1]);
			continue;
		}
		const quote = /^>\s?(.*)$/.exec(line);
		if (quote) {
			flush();
			out.push(`<blockquote>${inline(quote[1])}</blockquote>`);
			continue;
		}
		if (line.trim() === '') {
			flush();
			continue;
		}
		if (list) {
			flush();
		}
		paragraph.push(line);
	}
	flush();
	return out.join('\n');
}

/** `path:5-7` for a range (1-based lines; a selection of whole lines ends on its last). */
export function rangeLabel(path: string, range: { start: { line: number }; end: { line: number; character: number } }): string {
	const first = range.start.line + 1;
	let last = range.end.line + 1;
	if (last > first && range.end.character === 0) {
		last -= 1;
	}
	return first === last ? `${path}:${first}` : `${path}:${first}-${last}`;
}

export interface TranscriptTurn {
	question: string;
	answer: string;
	/** Still streaming. */
	pending?: boolean;
	/** The request failed: the one-line reason. */
	error?: string;
}

export function renderTranscript(title: string, turns: readonly TranscriptTurn[]): string {
	const parts = [`<h2 class="title">${escapeHtml(title)}</h2>`];
	for (const turn of turns) {
		parts.push(`<div class="question">${escapeHtml(turn.question)}</div>`);
		const cls = turn.pending ? 'answer pending' : 'answer';
		let body = renderMarkdown(turn.answer);
		if (turn.pending && !turn.answer) {
			body = '<p class="waiting">…</p>';
		}
		if (turn.error) {
			body += `<p class="error">${escapeHtml(turn.error)}</p>`;
		}
		parts.push(`<div class="${cls}">${body}</div>`);
	}
	return parts.join('\n');
}

/** Messages between the panel and the extension. */
export type ToPanel = { type: 'render'; html: string; busy: boolean };
export type FromPanel = { type: 'ready' } | { type: 'ask'; question: string } | { type: 'stop' };

export function chatPage(options: { nonce: string; cspSource: string; html: string }): string {
	const { nonce, cspSource, html } = options;
	return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${cspSource}; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Tandem chat</title>
<style nonce="${nonce}">
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 12px 90px; }
.title { font-size: 1.1em; opacity: 0.8; }
.question { margin-top: 1.2em; padding: 6px 10px; border-left: 3px solid var(--vscode-textLink-foreground); background: var(--vscode-textBlockQuote-background); white-space: pre-wrap; }
.answer { margin: 0.4em 0 1em; }
.pending { opacity: 0.9; }
.error { color: var(--vscode-errorForeground); }
pre { background: var(--vscode-textCodeBlock-background); padding: 8px; overflow-x: auto; }
code { font-family: var(--vscode-editor-font-family); }
form { position: fixed; bottom: 0; left: 0; right: 0; padding: 8px 12px; background: var(--vscode-editor-background); display: flex; gap: 6px; }
textarea { flex: 1; resize: vertical; min-height: 2.4em; color: var(--vscode-input-foreground); background: var(--vscode-input-background); border: 1px solid var(--vscode-input-border, transparent); font-family: inherit; }
button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 4px 12px; }
</style>
</head>
<body>
<div id="transcript">${html}</div>
<form id="ask">
<textarea id="question" placeholder="Ask a follow-up question (Enter to send, Shift+Enter for a new line)"></textarea>
<button id="send" type="submit">Ask</button>
<button id="stop" type="button" hidden>Stop</button>
</form>
<script nonce="${nonce}">
const vscode = acquireVsCodeApi();
const transcript = document.getElementById('transcript');
const question = document.getElementById('question');
const send = document.getElementById('send');
const stop = document.getElementById('stop');
window.addEventListener('message', (event) => {
	const message = event.data;
	if (message.type === 'render') {
		const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
		transcript.innerHTML = message.html;
		send.disabled = message.busy;
		stop.hidden = !message.busy;
		if (atBottom) { window.scrollTo(0, document.body.scrollHeight); }
	}
});
function ask() {
	const text = question.value.trim();
	if (!text || send.disabled) { return; }
	vscode.postMessage({ type: 'ask', question: text });
	question.value = '';
}
document.getElementById('ask').addEventListener('submit', (event) => { event.preventDefault(); ask(); });
question.addEventListener('keydown', (event) => {
	if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); ask(); }
});
stop.addEventListener('click', () => vscode.postMessage({ type: 'stop' }));
vscode.postMessage({ type: 'ready' });
</script>
</body>
</html>`;
}
