-- A suggestion of several lines: the first inline, the others as virtual lines;
-- accepting (here from the user's own <expr> mapping) inserts them all, the cursor at the end.
local H = dofile(vim.env.TANDEM_NVIM_TESTS .. "/harness.lua")
local api = vim.api
local inline = require("tandem.inline")

H.run(function()
  H.wait_ready()
  H.feed("2GA")
  local mark
  H.wait(function()
    mark = api.nvim_buf_get_extmarks(0, inline.ns, 0, -1, { details = true })[1]
    return mark
  end, 10000, "the ghost text")
  local virt_lines = {}
  for _, vl in ipairs(mark[4].virt_lines or {}) do
    virt_lines[#virt_lines + 1] = vl[1][1]
  end
  H.result("shown", {
    row = mark[2],
    col = mark[3],
    text = mark[4].virt_text[1][1],
    virt_lines = virt_lines,
    suggestion = inline.suggestion(),
  })
  -- accepted from a mapping of the user's own, as :help tandem-ghost-text shows
  vim.keymap.set("i", "<C-l>", function()
    if require("tandem").accept() then
      return ""
    end
    return "<C-l>"
  end, { expr = true, buffer = 0 })
  H.feed("<C-l>")
  H.wait(function()
    return H.lines()[3] == "    return total"
  end, 5000, "the accepted block")
  H.result("accepted", { lines = H.lines(), cursor = api.nvim_win_get_cursor(0) })
end)
