-- :checkhealth tandem, first with no server running (it starts one to see), then with one
-- attached to the buffer.
local H = dofile(vim.env.TANDEM_NVIM_TESTS .. "/harness.lua")
local api = vim.api

local function checkhealth()
  vim.cmd("checkhealth tandem")
  local buf = api.nvim_get_current_buf()
  H.wait(function()
    local text = table.concat(H.lines(buf), "\n")
    return text:find("tandem doctor", 1, true) and text:find("model", 1, true)
  end, 30000, "the health report")
  local lines = H.lines(buf)
  vim.cmd("tabclose")
  return lines
end

H.run(function()
  H.result("clients_before", #vim.lsp.get_clients({ name = "tandem" }))
  H.result("probe", checkhealth())
  vim.cmd("edit app.py")
  H.wait_ready()
  H.result("running", checkhealth())
end, 60000)
