--- Options of the Tandem plugin: the defaults, and the user's merged over them.
local M = {}

--- Every filetype Tandem has a grammar for (Neovim's filetype names).
M.FILETYPES = {
  "python",
  "javascript",
  "javascriptreact",
  "typescript",
  "typescriptreact",
  "go",
  "rust",
  "java",
  "c",
  "cpp",
  "cs",
  "ruby",
  "php",
  "sh",
  "bash",
}

M.defaults = {
  -- The server command; Neovim's environment is inherited, so TANDEM_* variables work.
  cmd = { "tandem", "serve" },
  -- Extra environment for the server (merged over Neovim's).
  cmd_env = nil,
  filetypes = M.FILETYPES,
  -- The workspace root is the nearest directory holding one of these, else the cwd.
  root_markers = { ".git" },
  -- Sent as initializationOptions: the same keys as Tandem's config file, e.g.
  -- { completion = { provider = "ollama", model = "qwen2.5-coder:1.5b-base" } }.
  settings = {},
  keymaps = {
    accept = "<Tab>", -- insert mode: accept the ghost text (else the key does what it did)
    dismiss = "<C-]>", -- insert mode: hide the ghost text (else the key does what it did)
    chat = false, -- normal/visual: :TandemChat on the line or the selection
    explain = false, -- normal/visual: :TandemExplain
    fix = false, -- normal/visual: :TandemFix
    context = false, -- normal: :TandemContext
  },
  inline = {
    enabled = true,
    debounce_ms = 75, -- idle time in insert mode before asking (Neovim 0.10/0.11)
    -- "auto": vim.lsp.inline_completion where it exists (Neovim 0.12+), else Tandem's own.
    native = "auto",
    hl_group = "TandemGhost",
  },
  chat = {
    layout = "float", -- "float" or "split"
    split = "vertical", -- for layout = "split": "vertical" or "horizontal"
    width = 0.6, -- of the editor, for the float (or columns when > 1)
    height = 0.7,
    border = "rounded",
  },
  status = {
    notify = true, -- a message when the server reports an error
    format = nil, -- function(state, message) -> string, for statusline()
  },
  on_attach = nil, -- function(client, bufnr)
}

M.options = vim.deepcopy(M.defaults)

-- Lists replace the default; tbl_deep_extend would merge them index by index.
local LISTS = { cmd = true, filetypes = true, root_markers = true }

function M.setup(opts)
  opts = opts or {}
  local tables = { "cmd", "filetypes", "root_markers", "settings", "keymaps", "chat", "inline" }
  for _, key in ipairs(vim.list_extend(tables, { "status" })) do
    if opts[key] ~= nil and type(opts[key]) ~= "table" then
      error(("tandem: option %s must be a table, got %s"):format(key, type(opts[key])))
    end
  end
  local merged = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  for key in pairs(LISTS) do
    if opts[key] ~= nil then
      merged[key] = vim.deepcopy(opts[key])
    end
  end
  if opts.settings ~= nil then
    merged.settings = vim.deepcopy(opts.settings)
  end
  local layout = merged.chat.layout
  if layout ~= "float" and layout ~= "split" then
    error(("tandem: chat.layout must be \"float\" or \"split\", got %q"):format(tostring(layout)))
  end
  M.options = merged
  return merged
end

return M
