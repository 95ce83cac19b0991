--- `tandem/status` notifications: {state, message} per client, for the statusline.
---
--- States: ready, busy (a model call past 250 ms), error (message says why), inactive (the
--- current file is one Tandem will not read). Each change fires `User TandemStatus`.
local M = {}
local util = require("tandem.util")

---@type table<integer, {state: string, message: string}>
M.by_client = {}

local LABELS = {
  starting = "Tandem: starting",
  ready = "Tandem: ready",
  busy = "Tandem: busy",
  error = "Tandem: error",
  inactive = "Tandem: inactive",
}

--- The handler for `tandem/status` (given in vim.lsp.start's `handlers`).
function M.handler(_, params, ctx)
  if type(params) ~= "table" or type(params.state) ~= "string" then
    return
  end
  local previous = M.by_client[ctx.client_id]
  local current = { state = params.state, message = params.message or "" }
  M.by_client[ctx.client_id] = current
  local options = require("tandem.config").options
  if
    options.status.notify
    and current.state == "error"
    and not (previous and previous.state == "error" and previous.message == current.message)
  then
    util.notify(current.message, vim.log.levels.WARN)
  end
  pcall(vim.api.nvim_exec_autocmds, "User", {
    pattern = "TandemStatus",
    modeline = false,
    data = { client_id = ctx.client_id, state = current.state, message = current.message },
  })
  pcall(vim.cmd.redrawstatus)
end

function M.forget(client_id)
  M.by_client[client_id] = nil
  pcall(vim.cmd.redrawstatus)
end

--- The status of the buffer's Tandem client: {state, message}, or nil when none is attached.
function M.get(bufnr)
  local client = util.client(bufnr or 0)
  if not client then
    return nil
  end
  return M.by_client[client.id] or { state = "starting", message = "" }
end

--- A short string for the statusline: "Tandem: ready", "Tandem: busy", "Tandem: error",
--- "Tandem: inactive"; "" in buffers Tandem is not attached to.
function M.statusline()
  local status = M.get(0)
  if not status then
    return ""
  end
  local format = require("tandem.config").options.status.format
  if type(format) == "function" then
    return format(status.state, status.message)
  end
  return LABELS[status.state] or ("Tandem: " .. status.state)
end

return M
