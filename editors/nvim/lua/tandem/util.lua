--- Helpers shared by the modules: the Tandem client of a buffer, requests that work on
--- Neovim 0.10 (client.request) and 0.11+ (client:request), LSP positions in any encoding,
--- and the command line of the `tandem` executable.
local M = {}
local api = vim.api

M.NAME = "tandem"
local METHODS = vim.fn.has("nvim-0.11") == 1

--- The Tandem client attached to a buffer (0 for the current one), if any.
function M.client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  return vim.lsp.get_clients({ name = M.NAME, bufnr = bufnr })[1]
end

--- Send a request; returns the request id (nil when the client is gone).
function M.request(client, method, params, handler, bufnr)
  local ok, id
  if METHODS then
    ok, id = client:request(method, params, handler, bufnr)
  else
    ok, id = client.request(method, params, handler, bufnr)
  end
  return ok and id or nil
end

function M.lsp_notify(client, method, params)
  if METHODS then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.cancel(client, id)
  if not (client and id) then
    return
  end
  if METHODS then
    pcall(client.cancel_request, client, id)
  else
    pcall(client.cancel_request, id)
  end
end

function M.stop(client, force)
  if METHODS then
    client:stop(force)
  else
    client.stop(force)
  end
end

--- Call `fn(client)` once the buffer's Tandem client is initialized and attached (the
--- document was sent), or `fn(nil, reason)` after `timeout_ms`.
function M.when_ready(bufnr, fn, timeout_ms)
  local deadline = vim.uv.now() + (timeout_ms or 15000)
  local function poll()
    if not api.nvim_buf_is_valid(bufnr) then
      return fn(nil, "the buffer is gone")
    end
    local client = M.client(bufnr)
    if client and client.initialized and not (client.is_stopped and client:is_stopped()) then
      return fn(client)
    end
    if not client then
      return fn(nil, "Tandem is not running for this buffer (see :checkhealth tandem)")
    end
    if vim.uv.now() >= deadline then
      return fn(nil, "the Tandem server did not start in time")
    end
    vim.defer_fn(poll, 30)
  end
  poll()
end

-- ---- positions ------------------------------------------------------------------------------

--- Code units a UTF-8 character of `len` bytes takes in `encoding`.
local function units(len, encoding)
  if encoding == "utf-8" then
    return len
  elseif encoding == "utf-32" then
    return 1
  end
  return len == 4 and 2 or 1 -- utf-16: astral characters are surrogate pairs
end

local function char_len(byte)
  if byte < 0x80 then
    return 1
  elseif byte >= 0xF0 then
    return 4
  elseif byte >= 0xE0 then
    return 3
  elseif byte >= 0xC0 then
    return 2
  end
  return 1 -- a stray continuation byte
end

--- The LSP character of byte column `col` (0-based) of `line`.
function M.char_of(line, col, encoding)
  encoding = encoding or "utf-16"
  if encoding == "utf-8" then
    return math.min(col, #line)
  end
  local i, n = 1, 0
  while i <= #line and i <= col do
    local len = char_len(line:byte(i))
    n = n + units(len, encoding)
    i = i + len
  end
  return n
end

--- The byte column (0-based) of LSP character `character` of `line`.
function M.byte_of(line, character, encoding)
  encoding = encoding or "utf-16"
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local i, n = 1, 0
  while i <= #line and n < character do
    local len = char_len(line:byte(i))
    n = n + units(len, encoding)
    i = i + len
  end
  return i - 1
end

function M.line(bufnr, row)
  return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

--- An LSP position from a 0-based row and byte column.
function M.position(bufnr, row, col, encoding)
  return { line = row, character = M.char_of(M.line(bufnr, row), col, encoding) }
end

--- The rows and byte columns a range command covers: {srow, scol, erow, ecol}, 0-based,
--- end exclusive. Whole lines, unless the command came from a charwise visual selection;
--- the line under the cursor when no range was given.
function M.command_span(bufnr, opts)
  local count = api.nvim_buf_line_count(bufnr)
  local l1, l2
  if (opts.range or 0) == 0 then
    l1 = api.nvim_win_get_cursor(0)[1] - 1
    l2 = l1
  else
    l1, l2 = opts.line1 - 1, opts.line2 - 1
    local vs, ve = vim.fn.getpos("'<"), vim.fn.getpos("'>")
    if opts.range == 2 and vim.fn.visualmode() == "v" and vs[2] - 1 == l1 and ve[2] - 1 == l2 then
      local last = M.line(bufnr, l2)
      local ecol = math.min(ve[3], #last) -- '> is on the last character: include all of it
      if ecol >= 1 and ecol <= #last then
        ecol = ecol - 1 + char_len(last:byte(ecol))
      end
      return { l1, math.max(0, vs[3] - 1), l2, math.min(ecol, #last) }
    end
  end
  if l2 + 1 < count then
    return { l1, 0, l2 + 1, 0 }
  end
  return { l1, 0, l2, #M.line(bufnr, l2) } -- the last line: up to its end
end

function M.lsp_range(bufnr, span, encoding)
  return {
    start = M.position(bufnr, span[1], span[2], encoding),
    ["end"] = M.position(bufnr, span[3], span[4], encoding),
  }
end

-- ---- the `tandem` command line ---------------------------------------------------------------

--- Dotted keys from the settings table (nested sections, dotted keys, or under "tandem").
local function flatten(settings)
  local out = {}
  local function walk(prefix, value)
    if type(value) == "table" and not vim.islist(value) then
      for k, v in pairs(value) do
        walk(prefix == "" and k or (prefix .. "." .. k), v)
      end
    else
      out[prefix] = value
    end
  end
  settings = settings or {}
  walk("", type(settings.tandem) == "table" and settings.tandem or settings)
  return out
end

local FLAGS = {
  ["completion.provider"] = "--provider",
  ["completion.endpoint"] = "--endpoint",
  ["completion.model"] = "--model",
  ["completion.fim"] = "--fim",
  ["timeout"] = "--timeout",
}
local ENV = {
  ["completion.api_key"] = "TANDEM_API_KEY",
  ["completion.api_version"] = "TANDEM_AZURE_API_VERSION",
  ["completion.entra_token"] = "TANDEM_AZURE_AD_TOKEN",
  ["chat.provider"] = "TANDEM_CHAT_PROVIDER",
  ["chat.endpoint"] = "TANDEM_CHAT_ENDPOINT",
  ["chat.model"] = "TANDEM_CHAT_MODEL",
  ["chat.api_key"] = "TANDEM_CHAT_API_KEY",
  ["cache_dir"] = "TANDEM_CACHE_DIR",
}
local SERVE_ONLY = { ["--tcp"] = true, ["--log-level"] = true }

--- The argv and environment that run `tandem SUBCOMMAND ARGS...` as the server would be run:
--- the executable (and any wrapper) from `cmd`, the shared flags given to `serve`, and the
--- plugin's settings as flags or TANDEM_* variables (what the command line can take).
function M.cli(options, subcommand, args)
  local cmd = options.cmd
  local argv, rest = {}, {}
  local serve
  for i, word in ipairs(cmd) do
    if word == "serve" and not serve then
      serve = i
    elseif serve then
      rest[#rest + 1] = word
    else
      argv[#argv + 1] = word
    end
  end
  argv[#argv + 1] = subcommand
  vim.list_extend(argv, args or {})
  local i = 1
  while i <= #rest do
    local word = rest[i]
    local flag = word:match("^(%-%-[%w-]+)")
    if flag and SERVE_ONLY[flag] then
      i = i + (word:find("=", 1, true) and 1 or 2)
    else
      argv[#argv + 1] = word
      i = i + 1
    end
  end
  local env = vim.tbl_extend("force", {}, options.cmd_env or {})
  local flags = vim.deepcopy(FLAGS)
  if subcommand == "context" or subcommand == "complete" then
    flags["completion.context_tokens"] = "--budget"
    flags["completion.max_tokens"] = "--max-tokens"
  end
  for key, value in pairs(flatten(options.settings)) do
    if flags[key] then
      vim.list_extend(argv, { flags[key], tostring(value) })
    elseif ENV[key] then
      env[ENV[key]] = tostring(value)
    end
  end
  return argv, env
end

function M.root(bufnr, markers)
  local root = vim.fs.root(bufnr, markers or { ".git" })
  return root or vim.fn.getcwd()
end

--- A scratch buffer with these lines, shown in a new split (reusing the window that shows
--- a buffer of the same name).
function M.scratch(name, lines, filetype)
  local buf = vim.fn.bufnr(name)
  if buf == -1 or not api.nvim_buf_is_valid(buf) then
    buf = api.nvim_create_buf(false, true)
    api.nvim_buf_set_name(buf, name)
  end
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].swapfile = false
  vim.bo[buf].modifiable = true
  api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].filetype = filetype or ""
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    vim.cmd("botright split")
    win = api.nvim_get_current_win()
    api.nvim_win_set_buf(win, buf)
  else
    api.nvim_set_current_win(win)
  end
  vim.keymap.set("n", "q", "<Cmd>close<CR>", { buffer = buf, nowait = true, desc = "Close" })
  return buf, win
end

function M.notify(msg, level)
  vim.notify("Tandem: " .. msg, level or vim.log.levels.INFO, { title = "Tandem" })
end

return M
