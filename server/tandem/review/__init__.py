"""Headless code review of a git diff, for CI: findings in SARIF, GitHub, GitLab, Markdown, ..."""
