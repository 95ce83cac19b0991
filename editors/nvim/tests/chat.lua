-- :TandemChat on a visual selection, the streamed answer, a follow-up, q, :TandemExplain.
local H = dofile(vim.env.TANDEM_NVIM_TESTS .. "/harness.lua")
local api = vim.api

H.run(function()
  H.wait_ready()
  local source = api.nvim_get_current_buf()
  local chat = require("tandem.chat")

  H.feed("5GVj:TandemChat What does it do?<CR>")
  local snapshots = {}
  H.wait(function()
    local st = chat.state()
    if not st then
      return false
    end
    local text = table.concat(H.lines(st.buf), "\n")
    if snapshots[#snapshots] ~= text then
      snapshots[#snapshots + 1] = text
    end
    return st.pending == nil and st.answers == 1
  end, 15000, "the first answer")
  local st = chat.state()
  H.result("first", {
    text = H.lines(st.buf),
    snapshots = snapshots,
    floating = api.nvim_win_get_config(st.win).relative ~= "",
    current = api.nvim_get_current_win() == st.win,
    filetype = vim.bo[st.buf].filetype,
    history = vim.deepcopy(st.history),
  })

  -- a follow-up from the chat window: the prompt is answered by a stub
  vim.ui.input = function(opts, on_confirm)
    H.result("prompt", opts.prompt)
    on_confirm("And loudly?")
  end
  local done = nil
  api.nvim_create_autocmd("User", {
    pattern = "TandemChatDone",
    once = true,
    callback = function(args)
      done = args.data
    end,
  })
  H.feed("i")
  H.wait(function()
    return done ~= nil
  end, 15000, "the follow-up answer")
  H.result("second", { text = H.lines(st.buf), deltas = done.deltas, history = vim.deepcopy(st.history) })

  -- :TandemChat again (from the chat window, a question on the command line) continues too
  H.feed(":TandemChat Why capitals?<CR>")
  H.wait(function()
    return st.answers == 3 and st.pending == nil
  end, 15000, "the third answer")
  H.result("third", { history_length = #st.history })

  H.feed("q")
  H.wait(function()
    return chat.state() == nil
  end, 5000, "the chat window to close")
  H.result("closed", {
    buf_valid = api.nvim_buf_is_valid(st.buf),
    win_valid = api.nvim_win_is_valid(st.win),
    current_is_source = api.nvim_get_current_buf() == source,
  })

  -- :TandemExplain on the line under the cursor: a new conversation (no history)
  H.feed("6G:TandemExplain<CR>")
  H.wait(function()
    local s = chat.state()
    return s and s.answers == 1 and s.pending == nil
  end, 15000, "the explanation")
  H.result("explain", { text = H.lines(chat.state().buf) })
  H.feed("q")
  H.wait(function()
    return chat.state() == nil
  end, 5000, "the chat window to close")

  -- the Explain code action from Neovim's own menu opens the chat too
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      return action.title == "Tandem: Explain"
    end,
    range = { start = { 5, 0 }, ["end"] = { 6, 0 } },
  })
  H.wait(function()
    local s = chat.state()
    return s and s.answers == 1 and s.pending == nil
  end, 15000, "the explanation from the code action")
  H.result("code_action", { text = H.lines(chat.state().buf) })
end)
