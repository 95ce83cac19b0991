-- A minimal init for the tests (and for trying the plugin from a checkout):
--   nvim --clean -u editors/nvim/tests/minimal_init.lua some_file.py
-- TANDEM_NVIM_CMD (a JSON list) overrides the server command; TANDEM_NVIM_LAYOUT the chat
-- layout; TANDEM_NVIM_DEBOUNCE the ghost-text idle time in ms.
local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
vim.opt.runtimepath:prepend(vim.fn.fnamemodify(here, ":h"))
vim.opt.swapfile = false
vim.opt.shadafile = "NONE"

local cmd = { "tandem", "serve" }
if vim.env.TANDEM_NVIM_CMD and vim.env.TANDEM_NVIM_CMD ~= "" then
  cmd = vim.json.decode(vim.env.TANDEM_NVIM_CMD)
end
require("tandem").setup({
  cmd = cmd,
  inline = { debounce_ms = tonumber(vim.env.TANDEM_NVIM_DEBOUNCE or "") or 75 },
  chat = { layout = vim.env.TANDEM_NVIM_LAYOUT or "float" },
})
vim.o.statusline = "%f %{v:lua.require'tandem'.statusline()}"
