"""The VS Code workbench in headless Chromium, driven as a person would: keys, menus, the DOM.

Selenium drives Debian's chromium through Debian's chromedriver, both passed explicitly (so
Selenium Manager never tries to download a driver). Every wait polls the DOM with a
generous bound (a loaded 2-core machine is slow, never hung) and on a timeout fails with
what it was waiting for and what the screen showed. ``shot(step)`` keeps a PNG of each step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # root in a container: Chromium's sandbox needs namespaces it lacks
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # this machine's network is closed: no probes
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
]
# The active editor's text lines, in order on screen (Monaco renders only what is visible),
# without the ghost text drawn inside them.
LINES_JS = """
const editor = arguments[0];
const lines = [...editor.querySelectorAll('.view-lines .view-line')];
lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
return lines.map((l) => {
  const copy = l.cloneNode(true);  // without the ghost text drawn inside the line
  copy.querySelectorAll('[class*="ghost-text"]').forEach((g) => g.remove());
  return copy.textContent.replace(/\\u00a0/g, ' ');
});
"""


# Ghost text is drawn in elements whose classes name it (ghost-text-decoration, ghost-text,
# ghost-text-decoration-preview ...), inside a view line or as extra lines below it.
GHOST_JS = """
const parts = [...document.querySelectorAll('.monaco-editor [class*="ghost-text"]')]
  .filter((e) => !e.parentElement.closest('[class*="ghost-text"]'));
return parts.map((e) => e.textContent.replace(/\\u00a0/g, ' ')).join('');
"""


MENU_ITEM_JS = """
function* all(root) {
  for (const e of root.querySelectorAll('*')) {
    yield e;
    if (e.shadowRoot) { yield* all(e.shadowRoot); }
  }
}
for (const e of all(document)) {
  if (e.matches('.monaco-menu .action-label') && e.textContent.trim() === arguments[0]) {
    return e;
  }
}
return null;
"""


# The right (proposed) side of the active diff editor, its lines in order on screen.
DIFF_LINES_JS = """
const group = document.querySelector('.editor-group-container.active');
const diff = group && group.querySelector('.monaco-diff-editor');
if (!diff) { return null; }
const editor = diff.querySelector('.monaco-editor.modified-in-monaco-diff-editor')
  || [...diff.querySelectorAll('.monaco-editor')].at(-1);
// Only the editor's own lines: an inline diff draws the removed ones in view zones.
const lines = [...editor.querySelectorAll('.lines-content > .view-lines > .view-line')];
lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
return lines.map((l) => l.textContent.replace(/\\u00a0/g, ' '));
"""


class Timeout(AssertionError):
    pass


class Workbench:
    """One Chromium window on a code-server workbench."""

    def __init__(self, chromium: Path, chromedriver: Path, profile: Path, shots: Path) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = str(chromium)
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        self.driver = webdriver.Chrome(
            options=options,
            service=Service(executable_path=str(chromedriver), log_output=str(profile) + ".log"),
        )
        self.driver.set_page_load_timeout(180)
        self.shots = shots
        shots.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def close(self) -> None:
        with contextlib.suppress(WebDriverException):
            self.driver.quit()

    # ---- waiting and looking -------------------------------------------------------------

    def shot(self, step: str) -> Path:
        self.count += 1
        path = self.shots / f"{self.count:02d}-{step}.png"
        with contextlib.suppress(WebDriverException):
            self.driver.switch_to.default_content()
            self.driver.save_screenshot(str(path))
        return path

    def wait(self, probe: Callable[[], T | None], what: str, timeout: float = 60) -> T:
        """The first truthy ``probe()``; fails naming ``what`` and keeps a screenshot."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                value = probe()
                if value:
                    return value
            except WebDriverException as error:  # an element replaced while reading it
                last_error = error
            if time.monotonic() > deadline:
                shot = self.shot("timeout")
                with contextlib.suppress(WebDriverException, OSError):
                    shot.with_suffix(".html").write_text(self.driver.page_source)
                raise Timeout(
                    f"waited {timeout:.0f} s for {what}; screen: {shot}; "
                    f"notifications: {self.notifications()}; status: {self.status()}"
                    + (f"; last error: {last_error}" if last_error else "")
                )
            time.sleep(0.2)

    def css(self, selector: str, root: WebElement | None = None) -> list[WebElement]:
        return (root or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait(lambda: self.css(".monaco-workbench .part.statusbar"), "the workbench", 180)

    def status(self) -> tuple[str, str]:
        """The Tandem status bar item's codicon (``check``, ``loading``, ``error`` ...) and
        its accessible label (its text and tooltip: the server's message)."""
        with contextlib.suppress(WebDriverException):
            for item in self.css(".statusbar-item"):
                if "tandem" not in (item.get_attribute("id") or "").lower():
                    continue
                icon = ""
                for span in self.css(".codicon", item):
                    names = (span.get_attribute("class") or "").split()
                    icon = next(
                        (n[8:] for n in names if n.startswith("codicon-") and "modifier" not in n),
                        icon,
                    )
                return icon, (item.get_attribute("aria-label") or item.text)
        return "", ""

    def notifications(self) -> list[str]:
        with contextlib.suppress(WebDriverException):
            self.driver.switch_to.default_content()
            return [
                n.text
                for n in self.css(".notifications-toasts .notification-toast")
                if n.text.strip()
            ]
        return []

    def notification_button(self, text: str, label: str) -> None:
        """Click the button ``label`` of the notification saying ``text`` (hovered first: a
        toast under the mouse does not hide itself)."""

        def button() -> WebElement | None:
            self.driver.switch_to.default_content()
            for toast in self.css(".notifications-toasts .notification-toast"):
                if text in toast.text:
                    for candidate in self.css(".monaco-button", toast):
                        if candidate.text.strip() == label:
                            return candidate
            return None

        found = self.wait(button, f"the {label!r} button of the notification {text!r}")
        ActionChains(self.driver).move_to_element(found).perform()
        found.click()

    def dismiss_notifications(self) -> None:
        for button in self.css(".notifications-toasts .codicon-notifications-clear"):
            with contextlib.suppress(WebDriverException):
                button.click()

    # ---- the editor ------------------------------------------------------------------------

    def editor(self) -> WebElement:
        """The focused or last active text editor."""
        focused = self.css(".editor-group-container.active .monaco-editor")
        return (focused or self.css(".monaco-editor"))[0]

    def lines(self) -> list[str]:
        return self.driver.execute_script(LINES_JS, self.editor())

    def ghost_text(self) -> str:
        """Inline-suggestion text on screen: every ghost-text element's text, in order."""
        with contextlib.suppress(WebDriverException):
            return self.driver.execute_script(GHOST_JS)
        return ""

    def keys(self, *keys: str) -> None:
        ActionChains(self.driver).send_keys(*keys).perform()

    def chord(self, *modifiers_and_key: str) -> None:
        *modifiers, key = modifiers_and_key
        chain = ActionChains(self.driver)
        for modifier in modifiers:
            chain.key_down(modifier)
        chain.send_keys(key)
        for modifier in reversed(modifiers):
            chain.key_up(modifier)
        chain.perform()

    def select_lines(self, first: int, last: int) -> None:
        """Select whole lines ``first``..``last`` (1-based) with Shift+Down, as a person would."""
        self.go_to(first, 1)
        for _ in range(last - first + 1):
            self.chord(Keys.SHIFT, Keys.DOWN)

    def context_menu(self, label: str) -> None:
        """Right-click the editor's selection and click the menu item ``label``."""

        def right_click() -> bool:  # retried: Monaco redraws the selection as it likes
            selected = self.css(".editor-group-container.active .selected-text")
            if selected:
                ActionChains(self.driver).context_click(selected[0]).perform()
            return bool(selected)

        self.wait(right_click, "a right-click on the selection")
        # The menu is drawn inside a shadow root: look there too.
        item = self.wait(
            lambda: self.driver.execute_script(MENU_ITEM_JS, label),
            f"{label!r} in the editor's context menu",
        )
        self.shot("context-menu")
        item.click()

    def quick_fix(self, label: str) -> None:
        """Ctrl+. (the light bulb's menu) on the selection and click the action ``label``."""
        self.focus_editor()
        self.chord(Keys.CONTROL, ".")

        def row() -> WebElement | None:
            for candidate in self.css(".action-widget .monaco-list-row"):
                if candidate.is_displayed() and label in candidate.text:
                    return candidate
            return None

        found = self.wait(row, f"{label!r} in the light bulb's menu")
        self.shot("light-bulb")
        found.click()

    def tab_titles(self) -> list[str]:
        """The active editor group's tab labels (a diff's title is its tab's label)."""
        return [
            (t.get_attribute("aria-label") or t.text)
            for t in self.css(".editor-group-container.active .tab")
        ]

    def diff_lines(self) -> list[str] | None:
        """The proposed side of the active diff editor, or None when no diff is active."""
        with contextlib.suppress(WebDriverException):
            self.driver.switch_to.default_content()
            return self.driver.execute_script(DIFF_LINES_JS)
        return None

    def title_actions(self) -> list[str]:
        """The active editor's title bar buttons, by their labels."""
        return [
            a.get_attribute("aria-label") or ""
            for a in self.css(
                ".editor-group-container.active .editor-actions .action-label,"
                " .editor-group-container.active .title-actions .action-label"
            )
        ]

    def type_into_quick_input(self, text: str) -> WebElement:
        """Type into the visible quick input once it takes keys (it fades in); its box."""

        def typed() -> WebElement | None:
            boxes = [i for i in self.css(".quick-input-widget input") if i.is_displayed()]
            if boxes:
                boxes[0].send_keys(text)  # raises, typing nothing, until it is interactable
                return boxes[0]
            return None

        return self.wait(typed, "the quick input box taking keys")

    def pick(self, text: str, label: str) -> None:
        """Type into the open quick pick and run the first row once it is ``label``."""
        box = self.type_into_quick_input(text)

        def first_row() -> bool:
            rows = self.css(".quick-input-list .monaco-list-row")
            return bool(rows) and label.lower() in rows[0].text.lower()

        self.wait(first_row, f"{label!r} in the quick pick")
        box.send_keys(Keys.ENTER)

    def command(self, title: str) -> None:
        """Run a command from the palette by its title, e.g. ``Tandem: Chat about selection``."""
        self.focus_editor()
        self.keys(Keys.F1)
        self.pick(title, title)

    def answer(self, text: str) -> None:
        """Type into an input box that a command opened, and press Enter."""
        self.type_into_quick_input(text).send_keys(Keys.ENTER)

    def open_file(self, name: str) -> None:
        self.chord(Keys.CONTROL, "p")
        self.pick(name, name)
        self.wait(
            lambda: any(
                name in (t.get_attribute("aria-label") or t.text)
                for t in self.css(".editor-group-container.active .tab.active")
            ),
            f"{name} open in an editor",
        )
        self.focus_editor()

    def focus_editor(self) -> None:
        self.driver.switch_to.default_content()
        with contextlib.suppress(WebDriverException):
            self.driver.execute_script(
                "const e = document.querySelector("
                "'.editor-group-container.active .monaco-editor .native-edit-context,"
                " .editor-group-container.active .monaco-editor textarea');"
                "if (e && document.activeElement !== e) { e.focus(); }"
            )

    def go_to(self, line: int, column: int) -> None:
        """Ctrl+G line:column (1-based), as a person would."""
        self.focus_editor()
        self.chord(Keys.CONTROL, "g")
        self.answer(f"{line}:{column}")
        self.wait(
            lambda: f"Ln {line}, Col {column}" in self.cursor_position(),
            f"the cursor at {line}:{column}",
            30,
        )

    def cursor_position(self) -> str:
        for item in self.css(".statusbar-item"):
            if "status.editor.selection" in (item.get_attribute("id") or ""):
                return item.text
        return ""

    # ---- webviews (the chat panel) -----------------------------------------------------------

    @contextlib.contextmanager
    def webview(self, title: str) -> Iterator[None]:
        """Inside the webview whose frame is titled ``title`` (outer frame, then the inner)."""
        self.driver.switch_to.default_content()
        frames = self.wait(
            lambda: [f for f in self.css("iframe.webview") if f.is_displayed()],
            f"the {title} webview",
        )
        self.driver.switch_to.frame(frames[-1])
        inner = self.wait(lambda: self.css("iframe#active-frame"), "the webview's content frame")
        self.driver.switch_to.frame(inner[0])
        try:
            yield
        finally:
            self.driver.switch_to.default_content()

    def webview_text(self, title: str) -> str:
        with self.webview(title):
            body = self.css("body")
            return body[0].text if body else ""
