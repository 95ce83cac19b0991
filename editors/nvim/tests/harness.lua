-- Runs a test script as a coroutine, so that the steps can wait (vim.wait would block the
-- main loop, and with it the keys fed to Neovim). Results go to $TANDEM_NVIM_RESULT as JSON;
-- a failure exits with :cquit, success with :qa!.
local H = { results = {}, log_lines = {} }
local uv = vim.uv
local result_path = assert(vim.env.TANDEM_NVIM_RESULT, "TANDEM_NVIM_RESULT is not set")
local log_path = result_path .. ".log"
local finished = false
local co

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

function H.log(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    parts[#parts + 1] = type(v) == "string" and v or vim.inspect(v)
  end
  H.log_lines[#H.log_lines + 1] = ("%8d %s"):format(uv.now(), table.concat(parts, " "))
  write(log_path, table.concat(H.log_lines, "\n") .. "\n")
end

local function finish(ok, err)
  if finished then
    return
  end
  finished = true
  write(result_path, vim.json.encode({ ok = ok, error = err, results = H.results, log = H.log_lines }))
  vim.schedule(function()
    vim.cmd(ok and "qa!" or "cquit 1")
  end)
end

local function resume(...)
  if finished then
    return
  end
  local ok, err = coroutine.resume(co, ...)
  if not ok then
    finish(false, tostring(err))
  elseif coroutine.status(co) == "dead" then
    finish(true)
  end
end

function H.sleep(ms)
  vim.defer_fn(function()
    resume()
  end, ms)
  coroutine.yield()
end

--- Wait until cond() is true (polling every 10 ms), or fail after `ms`.
function H.wait(cond, ms, what)
  local deadline = uv.now() + (ms or 10000)
  while true do
    local ok, value = pcall(cond)
    if ok and value then
      return value
    end
    if uv.now() > deadline then
      error(("timed out after %d ms waiting for %s%s"):format(ms or 10000, what or "a condition",
        ok and "" or (" (last error: " .. tostring(value) .. ")")), 2)
    end
    H.sleep(10)
  end
end

--- Wait for a User autocmd; returns its data.
function H.wait_event(pattern, ms)
  local got
  local id = vim.api.nvim_create_autocmd("User", {
    pattern = pattern,
    once = true,
    callback = function(args)
      got = args.data or {}
    end,
  })
  local ok, err = pcall(H.wait, function()
    return got ~= nil
  end, ms, "User " .. pattern)
  pcall(vim.api.nvim_del_autocmd, id)
  if not ok then
    error(err, 2)
  end
  return got
end

--- Keys as if typed (mappings apply).
function H.feed(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "t", false)
end

function H.lines(buf)
  return vim.api.nvim_buf_get_lines(buf or 0, 0, -1, false)
end

--- The Tandem client of the current buffer, once it is initialized and the server is ready.
function H.wait_ready(ms)
  local util = require("tandem.util")
  H.wait(function()
    local client = util.client(0)
    local status = require("tandem.status").get(0)
    return client and client.initialized and status and status.state == "ready"
  end, ms or 15000, "the Tandem server to be ready")
  return util.client(0)
end

function H.check(cond, message)
  if not cond then
    error("check failed: " .. message, 2)
  end
end

function H.result(key, value)
  H.results[key] = value
  H.log("result", key, value)
end

function H.run(fn, timeout_ms)
  co = coroutine.create(function()
    local ok, err = xpcall(fn, debug.traceback)
    if not ok then
      error(err, 0)
    end
  end)
  vim.defer_fn(function()
    finish(false, ("the test did not finish within %d ms"):format(timeout_ms or 30000))
  end, timeout_ms or 30000)
  vim.schedule(resume)
end

return H
