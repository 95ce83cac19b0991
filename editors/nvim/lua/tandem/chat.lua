--- Chat on a selection: `:TandemChat [question]`, `:TandemExplain`.
---
--- The question goes to the server as `workspace/executeCommand` `tandem.chat` with
--- {uri, range, question, token, history}; the answer streams back as `tandem/chatDelta`
--- notifications {token, delta} (matched by the per-request token) into a markdown buffer
--- in a floating window or a split, and the command's result {answer} is the final text.
--- While the window is open the conversation goes on: follow-ups (`i`, `a` or <CR> in the
--- window, or :TandemChat again) send the earlier questions and answers as history.
local M = {}
local api = vim.api
local util = require("tandem.util")
local config = require("tandem.config")

M.EXPLAIN = "Explain this code" -- the server's own Explain question
local REQUEST_CANCELLED = -32800
local BUFNAME = "tandem://chat"

---@class tandem.Conversation
---@field buf integer
---@field win integer?
---@field history {role: string, content: string}[]
---@field source {bufnr: integer, span: integer[]}
---@field pending table?
---@field answers integer

---@type tandem.Conversation?
local conv = nil
local seq = 0
local by_token = {}

--- The open conversation (nil when the chat window is closed): for tests and statuslines.
function M.state()
  return conv
end

-- ---- the buffer and its window -----------------------------------------------------------------

local function with_modifiable(buf, fn)
  vim.bo[buf].modifiable = true
  local ok, err = pcall(fn)
  vim.bo[buf].modifiable = false
  if not ok then
    error(err, 0)
  end
end

local function follow(buf)
  if not (conv and conv.win and api.nvim_win_is_valid(conv.win)) then
    return
  end
  local last = api.nvim_buf_line_count(buf)
  if api.nvim_get_current_win() ~= conv.win or api.nvim_win_get_cursor(conv.win)[1] >= last - 1 then
    api.nvim_win_set_cursor(conv.win, { last, 0 })
  end
end

--- Replace everything from row `start` on with `text`.
local function set_tail(buf, start, text)
  with_modifiable(buf, function()
    api.nvim_buf_set_lines(buf, start, -1, false, vim.split(text, "\n", { plain = true }))
  end)
  follow(buf)
end

local function append_lines(buf, lines)
  with_modifiable(buf, function()
    local count = api.nvim_buf_line_count(buf)
    local empty = count == 1 and api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ""
    api.nvim_buf_set_lines(buf, empty and 0 or count, -1, false, lines)
  end)
end

local function new_buffer()
  local buf = api.nvim_create_buf(false, true)
  if vim.fn.bufnr(BUFNAME) == -1 then
    api.nvim_buf_set_name(buf, BUFNAME)
  end
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = "markdown"
  vim.bo[buf].modifiable = false
  local function map(lhs, fn, desc)
    vim.keymap.set("n", lhs, fn, { buffer = buf, nowait = true, desc = desc })
  end
  map("q", M.close, "Close the Tandem chat")
  map("<C-c>", M.stop, "Stop the answer")
  for _, key in ipairs({ "i", "a", "<CR>" }) do
    map(key, M.follow_up, "Ask Tandem a follow-up question")
  end
  api.nvim_create_autocmd("BufWipeout", {
    buffer = buf,
    once = true,
    callback = function()
      if conv and conv.buf == buf then
        local pending = conv.pending
        conv = nil -- closed with :q or :bwipe: the conversation ends, the answer stops
        if pending then
          util.cancel(pending.client, pending.id)
        end
      end
    end,
  })
  return buf
end

local function open_window(buf)
  local o = config.options.chat
  if o.layout == "split" then
    vim.cmd(o.split == "horizontal" and "botright split" or "botright vsplit")
    local win = api.nvim_get_current_win()
    api.nvim_win_set_buf(win, buf)
    vim.wo[win].wrap = true
    vim.wo[win].linebreak = true
    return win
  end
  local columns, lines = vim.o.columns, vim.o.lines - vim.o.cmdheight - 2
  local function size(value, total, least)
    local n = value <= 1 and math.floor(total * value) or value
    return math.max(math.min(n, total - 4), math.min(least, total))
  end
  local width, height = size(o.width, columns, 40), size(o.height, lines, 8)
  local win_opts = {
    relative = "editor",
    width = width,
    height = height,
    row = math.floor((lines - height) / 2),
    col = math.floor((columns - width) / 2),
    style = "minimal",
    border = o.border,
  }
  if o.border ~= "none" and o.border ~= "" then
    win_opts.title = " Tandem chat "
    win_opts.title_pos = "center"
    win_opts.footer = " i: ask more  <C-c>: stop  q: close "
    win_opts.footer_pos = "center"
  end
  local win = api.nvim_open_win(buf, true, win_opts)
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  return win
end

local function show()
  if conv.win and api.nvim_win_is_valid(conv.win) then
    api.nvim_set_current_win(conv.win)
  else
    conv.win = open_window(conv.buf)
  end
end

-- ---- asking ------------------------------------------------------------------------------------

local function describe(source)
  local name = vim.fn.fnamemodify(api.nvim_buf_get_name(source.bufnr), ":~:.")
  local first, last = source.span[1] + 1, source.span[3] + 1
  if source.span[3] > source.span[1] and source.span[4] == 0 then
    last = last - 1 -- the span ends at the start of the next line
  end
  return first == last and ("_%s, line %d_"):format(name, first)
    or ("_%s, lines %d-%d_"):format(name, first, last)
end

local function finish(pending, err, result)
  if pending.token then
    by_token[pending.token] = nil
  end
  if not conv or conv.pending ~= pending then
    return -- stopped, or the window was closed
  end
  conv.pending = nil
  local answer, failure = nil, nil
  if err then
    local stopped = err.code == REQUEST_CANCELLED
    failure = stopped and "stopped" or (err.message or tostring(err))
    local shown = pending.text ~= "" and (pending.text .. "\n\n") or ""
    shown = shown .. (stopped and "_(stopped)_" or ("**Error:** " .. failure))
    set_tail(conv.buf, pending.start, shown)
  else
    answer = type(result) == "table" and type(result.answer) == "string" and result.answer
      or pending.text
    set_tail(conv.buf, pending.start, answer)
    table.insert(conv.history, { role = "user", content = pending.question })
    table.insert(conv.history, { role = "assistant", content = answer })
    conv.answers = conv.answers + 1
  end
  pcall(api.nvim_exec_autocmds, "User", {
    pattern = "TandemChatDone",
    modeline = false,
    data = { answer = answer, error = failure, deltas = pending.deltas },
  })
end

local function send(pending, client)
  local source = conv.source
  seq = seq + 1
  local token = ("nvim-%d-%d"):format(vim.fn.getpid(), seq)
  local argument = {
    uri = vim.uri_from_bufnr(source.bufnr),
    range = util.lsp_range(source.bufnr, source.span, client.offset_encoding),
    question = pending.question,
    token = token,
  }
  if #conv.history > 0 then
    argument.history = vim.deepcopy(conv.history)
  end
  pending.token, pending.client = token, client
  by_token[token] = pending
  local params = { command = "tandem.chat", arguments = { argument } }
  local id = util.request(client, "workspace/executeCommand", params, function(err, result)
    finish(pending, err, result)
  end, source.bufnr)
  if not id then
    finish(pending, { message = "the Tandem server is not running" })
  end
  pending.id = id
end

--- Ask `question` about `source` ({bufnr, span}: rows and byte columns, 0-based, end
--- exclusive), in the open conversation if there is one (its history goes along).
function M.ask(question, source)
  if conv and conv.pending then
    util.notify("still answering (<C-c> in the chat window stops it)", vim.log.levels.WARN)
    return
  end
  if not conv then
    conv = { buf = new_buffer(), history = {}, source = source, answers = 0 }
  end
  conv.source = source
  show()
  local header = { "## You" }
  vim.list_extend(header, vim.split(question, "\n", { plain = true }))
  vim.list_extend(header, { describe(source), "", "## Tandem" })
  if api.nvim_buf_line_count(conv.buf) > 1 then
    table.insert(header, 1, "")
  end
  append_lines(conv.buf, header)
  local start = api.nvim_buf_line_count(conv.buf)
  append_lines(conv.buf, { "…" })
  follow(conv.buf)
  local pending = { question = question, text = "", deltas = 0, start = start }
  conv.pending = pending
  util.when_ready(source.bufnr, function(client, why)
    if not conv or conv.pending ~= pending then
      return
    end
    if not client then
      return finish(pending, { message = why })
    end
    send(pending, client)
  end)
end

--- The handler for `tandem/chatDelta` {token, delta} (given in vim.lsp.start's `handlers`).
function M.on_delta(_, params, _)
  local pending = type(params) == "table" and by_token[params.token]
  if not pending or not conv or conv.pending ~= pending or type(params.delta) ~= "string" then
    return
  end
  pending.deltas = pending.deltas + 1
  pending.text = pending.text .. params.delta
  set_tail(conv.buf, pending.start, pending.text)
end

--- Stop the answer being streamed (sends $/cancelRequest, which aborts the model call).
function M.stop()
  local pending = conv and conv.pending
  if not pending then
    return
  end
  util.cancel(pending.client, pending.id)
  finish(pending, { code = REQUEST_CANCELLED, message = "stopped" })
end

--- Close the chat window; the conversation (its history) ends with it.
function M.close()
  if not conv then
    return
  end
  M.stop()
  local buf, win = conv.buf, conv.win
  conv = nil
  if win and api.nvim_win_is_valid(win) then
    if #api.nvim_list_wins() > 1 then
      api.nvim_win_close(win, true)
    else
      vim.cmd("enew")
    end
  end
  if api.nvim_buf_is_valid(buf) then
    api.nvim_buf_delete(buf, { force = true })
  end
end

local function prompt(source)
  vim.ui.input({ prompt = "Ask Tandem: " }, function(question)
    if question and question:match("%S") then
      M.ask(question, source)
    end
  end)
end

--- A follow-up question about the same selection, asked in a prompt.
function M.follow_up()
  if not conv then
    return
  end
  prompt(conv.source)
end

--- `:TandemChat [question]` and `:TandemExplain`: a range command. In the chat window it
--- asks a follow-up; elsewhere it asks about the range (or the line under the cursor, or,
--- while a chat about this buffer is open, the same selection as before).
function M.command(opts, question)
  if not question and opts.args and opts.args:match("%S") then
    question = opts.args
  end
  local bufnr = api.nvim_get_current_buf()
  local source
  if conv and bufnr == conv.buf then
    source = conv.source
  elseif (opts.range or 0) == 0 and conv and conv.source.bufnr == bufnr then
    source = conv.source
  else
    if not util.client(bufnr) then
      util.notify("not running for this buffer (see :checkhealth tandem)", vim.log.levels.ERROR)
      return
    end
    source = { bufnr = bufnr, span = util.command_span(bufnr, opts) }
  end
  if question then
    M.ask(question, source)
  else
    prompt(source)
  end
end

--- Client-side handler of the `tandem.chat` command, which the Explain code action carries
--- (so choosing it from vim.lsp.buf.code_action() opens the chat window).
function M.run_command(command, ctx)
  local argument = command.arguments and command.arguments[1]
  if type(argument) ~= "table" or type(argument.range) ~= "table" then
    return
  end
  local bufnr = argument.uri and vim.uri_to_bufnr(argument.uri) or ctx.bufnr
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  local encoding = client and client.offset_encoding or "utf-16"
  local s, e = argument.range.start, argument.range["end"]
  local span = {
    s.line,
    util.byte_of(util.line(bufnr, s.line), s.character, encoding),
    e.line,
    util.byte_of(util.line(bufnr, e.line), e.character, encoding),
  }
  M.ask(argument.question or M.EXPLAIN, { bufnr = bufnr, span = span })
end

return M
