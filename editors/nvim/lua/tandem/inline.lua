--- Ghost-text inline completions.
---
--- Neovim 0.12+: the built-in vim.lsp.inline_completion does the work. Neovim 0.10/0.11:
--- after `inline.debounce_ms` of idle time in insert mode, `textDocument/inlineCompletion`
--- is requested at the cursor and the first item is shown as virtual text (the first line
--- inline, the others as virtual lines). Moving the cursor, leaving insert mode or any change
--- that does not type the suggestion's next characters hides it; accepting inserts it and
--- runs the item's command (`tandem.acceptCompletion`).
local M = {}
local api = vim.api
local util = require("tandem.util")
local config = require("tandem.config")

M.ns = api.nvim_create_namespace("tandem_ghost")
M.enabled = true

---@class tandem.Suggestion
---@field row integer
---@field col integer       byte column of the cursor it was made for
---@field line string       the line's text then
---@field end_col integer   end of the text it replaces (the item's range), byte column
---@field lines string[]    what is still to insert
---@field item table        the LSP InlineCompletionItem
---@field client_id integer

---@class tandem.InlineState
---@field bufnr integer
---@field client_id integer
---@field timer uv.uv_timer_t?
---@field inflight table?
---@field suggestion tandem.Suggestion?

---@type table<integer, tandem.InlineState>
local states = {}

function M.native()
  local choice = config.options.inline.native
  local available = vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
  if choice == "auto" or choice == nil then
    return available
  end
  return choice and available
end

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function in_insert()
  return api.nvim_get_mode().mode:sub(1, 1) == "i"
end

-- ---- showing ----------------------------------------------------------------------------------

local function display(text)
  if not text:find("\t", 1, true) then
    return text
  end
  return (text:gsub("\t", string.rep(" ", vim.bo.tabstop)))
end

local function render(st)
  api.nvim_buf_clear_namespace(st.bufnr, M.ns, 0, -1)
  local s = st.suggestion
  if not s then
    return
  end
  local hl = config.options.inline.hl_group
  local virt_lines = {}
  for i = 2, #s.lines do
    virt_lines[#virt_lines + 1] = { { display(s.lines[i]), hl } }
  end
  api.nvim_buf_set_extmark(st.bufnr, M.ns, s.row, s.col, {
    virt_text = { { display(s.lines[1]), hl } },
    virt_text_pos = "inline",
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = "combine",
  })
end

local function stop_timer(st)
  if st.timer then
    st.timer:stop()
  end
end

local function cancel(st)
  local inflight = st.inflight
  st.inflight = nil
  if inflight then
    util.cancel(inflight.client, inflight.id)
  end
end

--- Hide the suggestion of a buffer (default: the current one) and forget pending requests.
function M.clear(bufnr)
  local st = states[bufnr or api.nvim_get_current_buf()]
  if not st then
    return
  end
  st.suggestion = nil
  stop_timer(st)
  cancel(st)
  if api.nvim_buf_is_valid(st.bufnr) then
    api.nvim_buf_clear_namespace(st.bufnr, M.ns, 0, -1)
  end
end

--- Whether a ghost-text suggestion is showing in the current buffer.
function M.visible()
  if M.native() then
    local ns = api.nvim_get_namespaces()["nvim.lsp.inline_completion"]
    return ns ~= nil and #api.nvim_buf_get_extmarks(0, ns, 0, -1, { limit = 1 }) > 0
  end
  local st = states[api.nvim_get_current_buf()]
  return st ~= nil and st.suggestion ~= nil
end

--- The suggestion showing in the current buffer: the text it would insert, or nil.
function M.suggestion()
  local st = states[api.nvim_get_current_buf()]
  local s = st and st.suggestion
  return s and table.concat(s.lines, "\n") or nil
end

local function show(st, client, item)
  local text = item.insertText
  if type(text) == "table" then
    text = text.value -- a snippet: shown and inserted as plain text
  end
  if type(text) ~= "string" or text == "" then
    return
  end
  local row, col = cursor()
  local line = util.line(st.bufnr, row)
  local end_col = col
  if type(item.range) == "table" then
    -- The range starts before the cursor when the text repeats what is typed already.
    local s, e = item.range.start, item.range["end"]
    if s.line ~= row or e.line ~= row then
      return
    end
    local from = util.byte_of(line, s.character, client.offset_encoding)
    local to = util.byte_of(line, e.character, client.offset_encoding)
    if from > col then
      return
    end
    local typed = line:sub(from + 1, col)
    if text:sub(1, #typed) ~= typed then
      return
    end
    text = text:sub(#typed + 1)
    end_col = math.max(col, to)
    if text == "" then
      return
    end
  end
  st.suggestion = {
    row = row,
    col = col,
    line = line,
    end_col = end_col,
    lines = vim.split(text, "\n", { plain = true }),
    item = item,
    client_id = client.id,
  }
  render(st)
  util.lsp_notify(client, "textDocument/didShowCompletion", { item = item })
  pcall(api.nvim_exec_autocmds, "User", { pattern = "TandemSuggestion", modeline = false })
end

-- ---- asking -----------------------------------------------------------------------------------

function M.request(bufnr)
  local st = states[bufnr or api.nvim_get_current_buf()]
  if not st or not M.enabled or api.nvim_get_current_buf() ~= st.bufnr or not in_insert() then
    return
  end
  if vim.fn.pumvisible() == 1 then
    return -- the completion menu is open: one thing at a time
  end
  local client = vim.lsp.get_client_by_id(st.client_id)
  if not client or not client.initialized then
    return
  end
  cancel(st)
  local row, col = cursor()
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(st.bufnr) },
    position = util.position(st.bufnr, row, col, client.offset_encoding),
    context = { triggerKind = 2 }, -- Automatic
  }
  local inflight = { client = client }
  st.inflight = inflight
  inflight.id = util.request(client, "textDocument/inlineCompletion", params, function(err, result)
    if st.inflight ~= inflight then
      return -- superseded, or cleared
    end
    st.inflight = nil
    if err or type(result) ~= "table" then
      return
    end
    if api.nvim_get_current_buf() ~= st.bufnr or not in_insert() then
      return
    end
    local r, c = cursor()
    if r ~= row or c ~= col or api.nvim_buf_get_changedtick(st.bufnr) ~= inflight.tick then
      return -- the cursor moved or the text changed: this answer is for another place
    end
    local items = result.items or result
    if type(items) == "table" and items[1] then
      show(st, client, items[1])
    end
  end, st.bufnr)
  -- After the request: sending it flushed pending didChange notifications.
  inflight.tick = api.nvim_buf_get_changedtick(st.bufnr)
end

local function schedule(st)
  if not M.enabled then
    return
  end
  st.timer = st.timer or vim.uv.new_timer()
  st.timer:stop()
  st.timer:start(
    math.max(0, config.options.inline.debounce_ms or 0),
    0,
    vim.schedule_wrap(function()
      if states[st.bufnr] == st then
        M.request(st.bufnr)
      end
    end)
  )
end

--- Still right after an edit or a move? Typing the suggestion's next characters keeps it
--- (what is left of it); anything else makes it stale.
local function still_valid(st)
  local s = st.suggestion
  local row, col = cursor()
  if row ~= s.row then
    return false
  end
  local line = util.line(st.bufnr, row)
  if col == s.col and line == s.line then
    return true
  end
  if col <= s.col or s.end_col ~= s.col then
    return false
  end
  if line:sub(1, s.col) ~= s.line:sub(1, s.col) or line:sub(col + 1) ~= s.line:sub(s.col + 1) then
    return false
  end
  local typed = line:sub(s.col + 1, col)
  local first = s.lines[1]
  if first:sub(1, #typed) ~= typed or (#typed == #first and #s.lines == 1) then
    return false
  end
  s.lines[1] = first:sub(#typed + 1)
  s.col, s.end_col, s.line = col, col, line
  render(st)
  return true
end

local function on_change(st)
  if st.suggestion and still_valid(st) then
    return
  end
  M.clear(st.bufnr)
  schedule(st)
end

-- ---- accepting --------------------------------------------------------------------------------

--- Insert the suggestion showing in the current buffer; false when there is none.
function M.accept()
  if M.native() then
    return vim.lsp.inline_completion.get() == true
  end
  local st = states[api.nvim_get_current_buf()]
  local s = st and st.suggestion
  if not s then
    return false
  end
  M.clear(st.bufnr)
  api.nvim_buf_set_text(st.bufnr, s.row, s.col, s.row, s.end_col, s.lines)
  local last = s.lines[#s.lines]
  local row = s.row + #s.lines - 1
  local col = (#s.lines == 1 and s.col or 0) + #last
  api.nvim_win_set_cursor(0, { row + 1, col })
  local command = s.item.command
  local client = vim.lsp.get_client_by_id(s.client_id)
  if client and type(command) == "table" and command.command then
    local params = { command = command.command, arguments = command.arguments }
    util.request(client, "workspace/executeCommand", params, function() end, st.bufnr)
  end
  pcall(api.nvim_exec_autocmds, "User", { pattern = "TandemAccepted", modeline = false })
  return true
end

-- ---- keys -------------------------------------------------------------------------------------

local fallbacks = {}

--- What `lhs` did before Tandem mapped it in this buffer, as keys for an <expr> mapping.
local function fallback_for(bufnr, lhs)
  local previous = api.nvim_buf_call(bufnr, function()
    return vim.fn.maparg(lhs, "i", false, true)
  end)
  if vim.tbl_isempty(previous) or (previous.desc or ""):match("^Tandem") then
    return function()
      return lhs
    end
  end
  if previous.expr == 1 then
    return function()
      if previous.callback then
        return previous.callback()
      end
      return api.nvim_eval(previous.rhs)
    end
  end
  local id = #fallbacks + 1
  fallbacks[id] = previous
  return function()
    return ("<Cmd>lua require('tandem.inline')._fallback(%d)<CR>"):format(id)
  end
end

function M._fallback(id)
  local previous = fallbacks[id]
  if previous.callback then
    previous.callback()
  else
    local keys = api.nvim_replace_termcodes(previous.rhs, true, true, true)
    api.nvim_feedkeys(keys, previous.noremap == 1 and "n" or "m", false)
  end
end

local function map_keys(bufnr)
  local keys = config.options.keymaps
  local native = M.native()
  if keys.accept then
    local fallback = fallback_for(bufnr, keys.accept)
    vim.keymap.set("i", keys.accept, function()
      if native then
        if vim.lsp.inline_completion.get() then
          return ""
        end
      elseif M.visible() then
        return "<Cmd>lua require('tandem.inline').accept()<CR>"
      end
      return fallback()
    end, { buffer = bufnr, expr = true, silent = true, desc = "Tandem: accept the suggestion" })
  end
  if keys.dismiss and not native then
    local fallback = fallback_for(bufnr, keys.dismiss)
    vim.keymap.set("i", keys.dismiss, function()
      if M.visible() then
        return "<Cmd>lua require('tandem.inline').clear()<CR>"
      end
      return fallback()
    end, { buffer = bufnr, expr = true, silent = true, desc = "Tandem: dismiss the suggestion" })
  end
end

-- ---- attaching --------------------------------------------------------------------------------

function M.attach(client, bufnr)
  if not config.options.inline.enabled then
    return
  end
  if M.native() then
    if not states[bufnr] then
      states[bufnr] = { bufnr = bufnr, client_id = client.id }
      vim.lsp.inline_completion.enable(M.enabled, { bufnr = bufnr })
      map_keys(bufnr)
    end
    return
  end
  if states[bufnr] then
    states[bufnr].client_id = client.id
    return
  end
  local st = { bufnr = bufnr, client_id = client.id }
  states[bufnr] = st
  local group = api.nvim_create_augroup("tandem_inline_" .. bufnr, { clear = true })
  local function on(events, fn)
    api.nvim_create_autocmd(events, { group = group, buffer = bufnr, callback = fn })
  end
  on("InsertEnter", function()
    schedule(st)
  end)
  on({ "CursorMovedI", "TextChangedI" }, function()
    on_change(st)
  end)
  on({ "InsertLeave", "BufLeave", "TextChanged", "TextChangedP" }, function()
    M.clear(bufnr)
  end)
  on({ "BufWipeout", "BufUnload" }, function()
    M.detach(bufnr)
  end)
  map_keys(bufnr)
end

function M.detach(bufnr)
  local st = states[bufnr]
  if not st then
    return
  end
  M.clear(bufnr)
  if st.timer then
    st.timer:close()
    st.timer = nil
  end
  states[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, "tandem_inline_" .. bufnr)
end

--- Turn ghost text on or off everywhere (`:TandemToggle`); returns the new state.
function M.toggle(enable)
  if enable == nil then
    enable = not M.enabled
  end
  M.enabled = enable
  if M.native() then
    for bufnr in pairs(states) do
      vim.lsp.inline_completion.enable(enable, { bufnr = bufnr })
    end
  elseif not enable then
    for bufnr in pairs(states) do
      M.clear(bufnr)
    end
  end
  return enable
end

return M
