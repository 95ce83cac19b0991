--- Tandem for Neovim: starts `tandem serve` (vim.lsp.start) for the configured filetypes and
--- adds chat on a selection, the editing code actions with a diff preview, ghost-text
--- completions, the context view, a health check and a statusline function.
---
---   require("tandem").setup({ settings = { completion = { provider = "ollama" } } })
---
--- See :help tandem.
local M = {}
local api = vim.api
local config = require("tandem.config")
local util = require("tandem.util")
local status = require("tandem.status")

M._configured = false
local warned_missing = false

--- Neovim's capabilities, plus versioned document edits: apply_workspace_edit handles
--- documentChanges (and file creation) although Neovim does not say so, and with them the
--- server sends edits that are refused when the buffer changed, and can create test files.
local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.workspace = caps.workspace or {}
  caps.workspace.workspaceEdit = caps.workspace.workspaceEdit or {}
  caps.workspace.workspaceEdit.documentChanges = true
  local operations = caps.workspace.workspaceEdit.resourceOperations or {}
  if not vim.tbl_contains(operations, "create") then
    table.insert(operations, "create")
  end
  caps.workspace.workspaceEdit.resourceOperations = operations
  return caps
end

local function client_config(bufnr)
  local options = config.options
  local settings = options.settings or {}
  return {
    name = util.NAME,
    cmd = options.cmd,
    capabilities = capabilities(),
    cmd_env = options.cmd_env,
    root_dir = util.root(bufnr, options.root_markers),
    init_options = next(settings) and settings or vim.empty_dict(),
    handlers = {
      ["tandem/status"] = status.handler,
      ["tandem/chatDelta"] = function(...)
        require("tandem.chat").on_delta(...)
      end,
    },
    on_attach = function(client, b)
      M._on_attach(client, b)
    end,
    on_exit = function(_, _, client_id)
      vim.schedule(function()
        status.forget(client_id)
      end)
    end,
  }
end

--- Start (or reuse) the server for a buffer; returns the client id.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  if not api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  if api.nvim_buf_get_name(bufnr) == "" then
    return nil -- Tandem reads files: an unnamed buffer has no path for the context engine
  end
  local exe = config.options.cmd[1]
  if vim.fn.executable(exe) ~= 1 then
    if not warned_missing then
      warned_missing = true
      util.notify(
        ("%s is not executable: set cmd in setup() (see :checkhealth tandem)"):format(exe),
        vim.log.levels.WARN
      )
    end
    return nil
  end
  return vim.lsp.start(client_config(bufnr), { bufnr = bufnr })
end

local function map(modes, lhs, rhs, bufnr, desc)
  if lhs then
    vim.keymap.set(modes, lhs, rhs, { buffer = bufnr, silent = true, desc = desc })
  end
end

function M._on_attach(client, bufnr)
  require("tandem.inline").attach(client, bufnr)
  local keys = config.options.keymaps
  map({ "n", "x" }, keys.chat, ":TandemChat<CR>", bufnr, "Tandem: chat about the selection")
  map({ "n", "x" }, keys.explain, ":TandemExplain<CR>", bufnr, "Tandem: explain the selection")
  map({ "n", "x" }, keys.fix, ":TandemFix<CR>", bufnr, "Tandem: fix the selection")
  map("n", keys.context, "<Cmd>TandemContext<CR>", bufnr, "Tandem: show the context sent")
  if type(config.options.on_attach) == "function" then
    config.options.on_attach(client, bufnr)
  end
end

--- Configure Tandem and start it for the configured filetypes (buffers already open too).
function M.setup(opts)
  config.setup(opts)
  M._configured = true
  warned_missing = false
  api.nvim_set_hl(0, "TandemGhost", { link = "Comment", default = true })
  -- The Explain code action carries a tandem.chat command: show it as a chat.
  vim.lsp.commands["tandem.chat"] = function(command, ctx)
    require("tandem.chat").run_command(command, ctx)
  end
  local group = api.nvim_create_augroup("tandem", { clear = true })
  api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = config.options.filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  api.nvim_create_autocmd("ColorScheme", {
    group = group,
    callback = function()
      api.nvim_set_hl(0, "TandemGhost", { link = "Comment", default = true })
    end,
  })
  local wanted = {}
  for _, ft in ipairs(config.options.filetypes) do
    wanted[ft] = true
  end
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) and wanted[vim.bo[bufnr].filetype] then
      M.attach(bufnr)
    end
  end
end

--- setup() with the defaults, unless it was called already (commands call this).
function M.ensure_setup()
  if not M._configured then
    M.setup({})
  end
end

--- Stop the servers and start them again for the buffers they served.
function M.restart()
  local buffers = {}
  local clients = vim.lsp.get_clients({ name = util.NAME })
  for _, client in ipairs(clients) do
    for bufnr in pairs(client.attached_buffers or {}) do
      buffers[#buffers + 1] = bufnr
    end
    util.stop(client)
  end
  local deadline = vim.uv.now() + 5000
  local function again()
    local alive = false
    for _, client in ipairs(clients) do
      if not (client.is_stopped and client:is_stopped()) then
        alive = true
      end
    end
    if alive and vim.uv.now() < deadline then
      return vim.defer_fn(again, 50)
    end
    for _, client in ipairs(clients) do
      util.stop(client, true)
    end
    for _, bufnr in ipairs(buffers) do
      require("tandem.inline").detach(bufnr)
      M.attach(bufnr)
    end
    util.notify(("restarted (%d buffer%s)"):format(#buffers, #buffers == 1 and "" or "s"))
  end
  again()
end

M.statusline = status.statusline
M.status = status.get
M.client = util.client
--- Accept the ghost text; false when none is showing. Safe in an <expr> mapping: the text
--- goes in right after the mapping returns.
M.accept = function()
  local inline = require("tandem.inline")
  if inline.native() then
    return inline.accept()
  end
  if not inline.visible() then
    return false
  end
  vim.schedule(inline.accept)
  return true
end
M.visible = function()
  return require("tandem.inline").visible()
end
M.dismiss = function()
  return require("tandem.inline").clear()
end
M.chat = function(question, opts)
  return require("tandem.chat").command(opts or { range = 0, args = "" }, question)
end

return M
