-- :TandemContext shows the parts and the prompt for the cursor; :TandemContext! the JSON.
local H = dofile(vim.env.TANDEM_NVIM_TESTS .. "/harness.lua")
local api = vim.api

H.run(function()
  H.wait_ready()
  local source = api.nvim_get_current_win()
  api.nvim_win_set_cursor(0, { 6, 15 })
  vim.cmd("TandemContext")
  H.wait_event("TandemContextShown", 20000)
  H.result("view", { lines = H.lines(), name = api.nvim_buf_get_name(0), filetype = vim.bo.filetype })
  api.nvim_set_current_win(source)
  vim.cmd("TandemContext!")
  H.wait_event("TandemContextShown", 20000)
  H.result("json", vim.json.decode(table.concat(H.lines(), "\n")))
  H.result("windows", #api.nvim_list_wins())
end, 45000)
