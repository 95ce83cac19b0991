// Bundle the extension into dist/extension.js (one file; `vscode` is provided by the editor).
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');

await esbuild.build({
	entryPoints: ['src/extension.ts'],
	bundle: true,
	outfile: 'dist/extension.js',
	external: ['vscode'],
	format: 'cjs',
	platform: 'node',
	target: 'node20',
	sourcemap: !production,
	minify: production,
	logLevel: 'warning',
	metafile: true,
}).then((result) => {
	const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
	console.log(`dist/extension.js: ${(bytes / 1024).toFixed(0)} KiB${production ? ' (minified)' : ''}`);
});
