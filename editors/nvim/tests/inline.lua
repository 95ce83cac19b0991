-- Ghost text: appears after idle in insert mode, typing through it keeps the rest, other
-- typing makes it stale, <Esc> hides it, <Tab> accepts it (and runs its command), and <Tab>
-- without a suggestion still does what <Tab> does.
local H = dofile(vim.env.TANDEM_NVIM_TESTS .. "/harness.lua")
local api = vim.api
local inline = require("tandem.inline")
local util = require("tandem.util")

local function marks()
  local found = api.nvim_buf_get_extmarks(0, inline.ns, 0, -1, { details = true })
  local out = {}
  for _, m in ipairs(found) do
    local d = m[4]
    local virt_lines = {}
    for _, vl in ipairs(d.virt_lines or {}) do
      virt_lines[#virt_lines + 1] = vl[1][1]
    end
    out[#out + 1] = {
      row = m[2],
      col = m[3],
      text = d.virt_text and d.virt_text[1][1],
      pos = d.virt_text_pos,
      hl = d.virt_text and d.virt_text[1][2],
      virt_lines = virt_lines,
    }
  end
  return out
end

H.run(function()
  H.wait_ready()
  -- record what the plugin sends
  local sent = {}
  local request = util.request
  util.request = function(client, method, params, handler, bufnr)
    sent[#sent + 1] = { method = method, command = params.command }
    return request(client, method, params, handler, bufnr)
  end

  H.feed("2GA") -- insert mode at the end of "    return "
  H.wait(function()
    return #marks() == 1
  end, 10000, "the ghost text")
  H.result("shown", { marks = marks(), mode = api.nvim_get_mode().mode, line = H.lines()[2] })

  H.feed('"') -- typing the suggestion's first character keeps the rest
  H.wait(function()
    return H.lines()[2] == '    return "'
  end, 5000, "the typed quote")
  H.result("typed_through", { marks = marks(), visible = inline.visible() })

  -- Not what was suggested: stale at once. Looked at right after the plugin's own
  -- TextChangedI handler (defined earlier, so run earlier), before a new suggestion can come.
  local stale
  api.nvim_create_autocmd("TextChangedI", {
    buffer = 0,
    callback = function()
      if not stale and H.lines()[2] == '    return "x' then
        stale = { marks = marks(), visible = inline.visible() }
      end
    end,
  })
  H.feed("x")
  H.wait(function()
    return stale ~= nil
  end, 5000, "the typed x")
  H.result("stale", stale)

  H.feed("<BS><BS>")
  H.wait(function()
    return H.lines()[2] == "    return " and #marks() == 1
  end, 10000, "the ghost text again")
  H.feed("<Esc>")
  H.wait(function()
    return api.nvim_get_mode().mode == "n"
  end, 5000, "normal mode")
  H.result("escaped", { marks = marks() })

  H.feed("A")
  H.wait(function()
    return #marks() == 1
  end, 10000, "the ghost text after A")
  H.feed("<Tab>")
  H.wait(function()
    return H.lines()[2] ~= "    return "
  end, 5000, "the accepted text")
  H.wait(function()
    for _, s in ipairs(sent) do
      if s.command == "tandem.acceptCompletion" then
        return true
      end
    end
  end, 5000, "the accept command")
  H.result("accepted", {
    lines = H.lines(),
    cursor = api.nvim_win_get_cursor(0),
    mode = api.nvim_get_mode().mode,
    sent = sent,
  })
  H.feed("<Esc>")

  -- ghost text off: <Tab> is a <Tab> again
  vim.cmd("TandemToggle")
  H.feed("ggI<Tab><Esc>")
  H.wait(function()
    return api.nvim_get_mode().mode == "n" and H.lines()[1] ~= "def greet(name):"
  end, 5000, "the tab")
  H.sleep(300) -- no ghost text comes while it is off
  H.result("fallback", { first = H.lines()[1], marks = marks() })
end)
