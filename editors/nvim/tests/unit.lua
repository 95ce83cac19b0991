-- The pure helpers: positions in every encoding, command spans, the command line built
-- from the settings, and what a WorkspaceEdit does to a text (for the diff preview).
local H = dofile(vim.env.TANDEM_NVIM_TESTS .. "/harness.lua")
local api = vim.api
local util = require("tandem.util")
local actions = require("tandem.actions")

H.run(function()
  local line = "a😀é b" -- bytes: a=1, 😀=4, é=2, space, b
  local chars = {}
  for _, enc in ipairs({ "utf-8", "utf-16", "utf-32" }) do
    chars[enc] = {
      after_emoji = util.char_of(line, 5, enc),
      after_e = util.char_of(line, 7, enc),
      back_after_emoji = util.byte_of(line, util.char_of(line, 5, enc), enc),
      back_end = util.byte_of(line, util.char_of(line, #line, enc), enc),
    }
  end
  H.result("chars", chars)

  api.nvim_buf_set_lines(0, 0, -1, false, { "one", "two 😀 three", "four" })
  local spans = {}
  spans.lines = util.command_span(0, { range = 2, line1 = 1, line2 = 2 })
  spans.last = util.command_span(0, { range = 2, line1 = 2, line2 = 3 })
  api.nvim_win_set_cursor(0, { 2, 0 })
  spans.cursor = util.command_span(0, { range = 0 })
  vim.cmd("normal! 2G4|vf😀\27") -- charwise: "😀" is included whole
  spans.charwise = util.command_span(0, { range = 2, line1 = 2, line2 = 2 })
  spans.charwise_range = util.lsp_range(0, spans.charwise, "utf-16")
  H.result("spans", spans)

  local options = {
    cmd = { "uvx", "--from", "tandem-ls", "tandem", "serve", "--log-level", "INFO", "--fim", "qwen" },
    settings = {
      completion = { provider = "ollama", model = "m", api_key = "k", context_tokens = 512 },
      ["chat.model"] = "big",
      timeout = 5,
    },
  }
  local argv, env = util.cli(options, "context", { "--json", "f.py:1:1" })
  H.result("cli_context", { argv = argv, env = env })
  argv = util.cli({ cmd = { "tandem", "serve" }, settings = { tandem = { completion = { model = "x" } } } }, "doctor")
  H.result("cli_doctor", argv)

  local text = actions.apply_to_lines({ "ab", "cd" }, {
    { range = { start = { line = 0, character = 1 }, ["end"] = { line = 1, character = 1 } }, newText = "X" },
    { range = { start = { line = 2, character = 0 }, ["end"] = { line = 2, character = 0 } }, newText = "new\n" },
    { range = { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 0 } }, newText = "1" },
    { range = { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 0 } }, newText = "2" },
  }, "utf-16")
  H.result("applied", text)
end)
