--- `:checkhealth tandem`: Neovim's version, the executable, the server starting, and the
--- models answering (through `tandem doctor`, the server's own doctor path).
local M = {}
local util = require("tandem.util")
local config = require("tandem.config")

local health = vim.health
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local err = health.error or health.report_error
local info = health.info or health.report_info

local function encode(message)
  local body = vim.json.encode(message)
  return ("Content-Length: %d\r\n\r\n%s"):format(#body, body)
end

--- Spawn the server, initialize it, and shut it down again: its serverInfo and
--- capabilities, or nil and why not.
function M.probe(options, root, timeout_ms)
  local buffer, responses, stderr = "", {}, {}
  local proc_ok, proc = pcall(vim.system, options.cmd, {
    stdin = true,
    cwd = root,
    env = options.cmd_env,
    stdout = function(_, data)
      if not data then
        return
      end
      buffer = buffer .. data
      while true do
        local header_end = buffer:find("\r\n\r\n", 1, true)
        if not header_end then
          break
        end
        local length = tonumber(buffer:sub(1, header_end):match("Content%-Length: *(%d+)"))
        if not length or #buffer < header_end + 3 + length then
          break
        end
        local body = buffer:sub(header_end + 4, header_end + 3 + length)
        buffer = buffer:sub(header_end + 4 + length)
        local decoded, message = pcall(vim.json.decode, body)
        if decoded and type(message) == "table" and message.id ~= nil and message.method == nil then
          responses[message.id] = message
        end
      end
    end,
    stderr = function(_, data)
      if data then
        stderr[#stderr + 1] = data
      end
    end,
  })
  if not proc_ok then
    return nil, tostring(proc)
  end
  local function send(message)
    return pcall(proc.write, proc, encode(message)) -- fails once the server is gone
  end
  local function call(id, method, params)
    if not send({ jsonrpc = "2.0", id = id, method = method, params = params }) then
      return nil
    end
    local done = vim.wait(timeout_ms, function()
      return responses[id] ~= nil
    end, 20)
    return done and responses[id] or nil
  end
  local settings = options.settings
  local init = call(1, "initialize", {
    processId = vim.fn.getpid(),
    rootUri = vim.uri_from_fname(root),
    capabilities = vim.empty_dict(),
    initializationOptions = (settings and next(settings)) and settings or vim.empty_dict(),
    clientInfo = { name = "tandem.nvim checkhealth" },
  })
  local result, why = nil, nil
  if not init then
    why = "no answer to initialize within " .. timeout_ms .. " ms"
  elseif init.error then
    why = "initialize failed: " .. tostring(init.error.message)
  else
    result = init.result
    send({ jsonrpc = "2.0", method = "initialized", params = vim.empty_dict() })
    call(2, "shutdown", vim.NIL)
    send({ jsonrpc = "2.0", method = "exit" })
  end
  pcall(proc.write, proc, nil)
  local exited = vim.wait(3000, function()
    return proc:is_closing()
  end, 20)
  if not exited then
    pcall(proc.kill, proc, "sigkill")
  end
  if why then
    local text = vim.trim(table.concat(stderr))
    if text ~= "" then
      why = why .. ": " .. (text:match("([^\n]*)\n*$") or text)
    end
  end
  return result, why
end

function M.check()
  local options = config.options
  start("Neovim")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.10") == 1 then
    local ghost = require("tandem.inline").native() and "vim.lsp.inline_completion"
      or "Tandem's own extmarks"
    ok(("Neovim %s (ghost text: %s)"):format(version, ghost))
  else
    err(("Neovim %s is too old: Tandem needs 0.10 or newer"):format(version))
  end

  start("Tandem executable")
  local exe = vim.fn.exepath(options.cmd[1])
  if exe == "" then
    err(
      ("%s not found on $PATH"):format(options.cmd[1]),
      { "pip install tandem-ls", 'or set cmd = { "/path/to/tandem", "serve" } in setup()' }
    )
    return
  end
  ok(("found %s (cmd: %s)"):format(exe, table.concat(options.cmd, " ")))

  start("Tandem server")
  local bufnr = vim.api.nvim_get_current_buf()
  local root = util.root(bufnr, options.root_markers)
  local running = vim.lsp.get_clients({ name = util.NAME })
  if #running > 0 then
    for _, client in ipairs(running) do
      local server = client.server_info or {}
      local state = require("tandem.status").by_client[client.id]
      local shown = ""
      if state then
        local message = state.message ~= "" and (": " .. state.message) or ""
        shown = ", status " .. state.state .. message
      end
      ok(
        ("running: client %d, %s %s, root %s%s"):format(
          client.id,
          server.name or "tandem",
          server.version or "",
          client.root_dir or "?",
          shown
        )
      )
    end
  else
    local result, why = M.probe(options, root, 15000)
    if result then
      local server = result.serverInfo or {}
      local caps = result.capabilities or {}
      ok(("the server starts: %s %s"):format(server.name or "?", server.version or ""))
      if caps.inlineCompletionProvider then
        ok("it offers inline completions, chat and code actions")
      else
        warn("it does not offer textDocument/inlineCompletion: an old tandem?")
      end
    else
      err("the server does not start: " .. tostring(why))
    end
  end
  if util.client(bufnr) then
    info("attached to the current buffer")
  else
    local filetypes = table.concat(options.filetypes, ", ")
    info(("not attached to the current buffer (filetypes: %s)"):format(filetypes))
  end

  start("Models (tandem doctor)")
  local argv, env = util.cli(options, "doctor", {})
  local spawned, proc = pcall(vim.system, argv, { cwd = root, env = env, text = true })
  if not spawned then
    err("cannot run tandem doctor: " .. tostring(proc))
    return
  end
  local result = proc:wait(60000)
  local lines = vim.split(result.stdout or "", "\n", { plain = true, trimempty = true })
  local settings = {}
  local answered = 0
  for _, line in ipairs(lines) do
    local role, rest = line:match("^(%a+)%s+(.*)$")
    local model, details = (rest or ""):match("^(.-): ok, (.*)$")
    if (role == "completion" or role == "chat") and model then
      ok(("%s model %s answers (%s)"):format(role, model, details))
      answered = answered + 1
    elseif (role == "completion" or role == "chat") and rest:find(": FAILED", 1, true) then
      err(("%s model: %s"):format(role, rest))
    elseif line:match("^  ") then
      settings[#settings + 1] = vim.trim(line)
    else
      info(line)
    end
  end
  if #settings > 0 then
    info("settings:\n" .. table.concat(settings, "\n"))
  end
  if result.code ~= 0 then
    local stderr = vim.trim(result.stderr or "")
    local why = stderr ~= "" and (": " .. stderr) or ""
    err(("tandem doctor exited with %d%s"):format(result.code, why))
  elseif answered == 0 then
    warn("tandem doctor reported no model answer")
  end
end

return M
