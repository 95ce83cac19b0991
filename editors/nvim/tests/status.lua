-- The statusline function follows tandem/status: ready, then error when the model fails
-- (with one notification), "" where Tandem is not attached.
local H = dofile(vim.env.TANDEM_NVIM_TESTS .. "/harness.lua")
local api = vim.api
local tandem = require("tandem")

H.run(function()
  local notes = {}
  vim.notify = function(msg, level)
    notes[#notes + 1] = { msg = msg, level = level }
  end
  local before = tandem.statusline()
  H.wait_ready()
  H.result("ready", { statusline = tandem.statusline(), status = tandem.status(0), before = before })
  local rendered = api.nvim_eval_statusline(vim.o.statusline, {}).str
  H.result("rendered", rendered)

  H.feed("5GVj:TandemChat Why?<CR>")
  local done = H.wait_event("TandemChatDone", 15000)
  local chat_lines = H.lines(require("tandem.chat").state().buf)
  H.feed("q")
  H.wait(function()
    return require("tandem.chat").state() == nil
  end, 5000, "the chat to close")
  H.wait(function()
    return tandem.statusline() == "Tandem: error"
  end, 5000, "the error status")
  H.result("error", {
    statusline = tandem.statusline(),
    status = tandem.status(0),
    done = done,
    chat = chat_lines,
    notes = notes,
  })
  vim.cmd("enew")
  H.result("elsewhere", tandem.statusline())
end)
