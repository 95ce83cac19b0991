-- Tandem's user commands. Nothing starts until require("tandem").setup() is called, or
-- until one of these commands is used (which runs setup() with the defaults first).
if vim.g.loaded_tandem then
  return
end
vim.g.loaded_tandem = true

if vim.fn.has("nvim-0.10") == 0 then
  vim.api.nvim_echo({ { "tandem: Neovim 0.10 or newer is needed", "ErrorMsg" } }, true, {})
  return
end

local function command(name, run, opts)
  vim.api.nvim_create_user_command(name, function(args)
    require("tandem").ensure_setup()
    run(args)
  end, opts)
end

command("TandemChat", function(args)
  require("tandem.chat").command(args)
end, { range = true, nargs = "*", desc = "Tandem: chat about the selection (or the line)" })

command("TandemExplain", function(args)
  local chat = require("tandem.chat")
  chat.command(args, chat.EXPLAIN)
end, { range = true, desc = "Tandem: explain the selection" })

local edits = { TandemFix = "fix", TandemDocstring = "docstring", TandemTests = "tests" }
for name, action in pairs(edits) do
  command(name, function(args)
    require("tandem.actions").command(action, args)
  end, { range = true, desc = "Tandem: " .. action .. " the selection (diff, then apply)" })
end

command("TandemContext", function(args)
  require("tandem.context").command(args)
end, { bang = true, desc = "Tandem: show what a completion at the cursor sends (! for JSON)" })

command("TandemToggle", function()
  local on = require("tandem.inline").toggle()
  vim.notify("Tandem: ghost text " .. (on and "on" or "off"))
end, { desc = "Tandem: turn ghost-text completions on or off" })

command("TandemRestart", function()
  require("tandem").restart()
end, { desc = "Tandem: restart the server" })

command("TandemStatus", function()
  local status = require("tandem.status").get(0)
  if not status then
    vim.notify("Tandem: not attached to this buffer")
  else
    local message = status.message ~= "" and (": " .. status.message) or ""
    vim.notify(("Tandem: %s%s"):format(status.state, message))
  end
end, { desc = "Tandem: the server's status for this buffer" })
