-- :TandemFix on a selection: the diff preview, Apply (one undo step reverts it), Discard.
local H = dofile(vim.env.TANDEM_NVIM_TESTS .. "/harness.lua")
local api = vim.api

H.run(function()
  H.wait_ready()
  local original = H.lines()
  local choices = { "Apply", "Discard", "edit, then Apply", "Apply" }
  local asked = {}
  vim.ui.select = function(items, opts, on_choice)
    -- the preview is showing while the question is asked
    local preview
    for _, win in ipairs(api.nvim_list_wins()) do
      local buf = api.nvim_win_get_buf(win)
      if vim.bo[buf].filetype == "diff" then
        preview = { lines = H.lines(buf), floating = api.nvim_win_get_config(win).relative ~= "" }
      end
    end
    asked[#asked + 1] = { items = items, prompt = opts.prompt, preview = preview }
    local choice = table.remove(choices, 1)
    if choice == "edit, then Apply" then
      -- the user changes the buffer while the diff is showing: the edit is stale
      api.nvim_buf_set_lines(0, 0, 0, false, { "# edited meanwhile" })
      choice = "Apply"
    end
    on_choice(choice)
  end

  H.feed("5GVj:TandemFix<CR>")
  local done = H.wait_event("TandemEditDone", 15000)
  H.result("applied", {
    done = { applied = done.applied, diff = done.diff },
    lines = H.lines(),
    asked = asked[1],
    modified = vim.bo.modified,
    windows = #api.nvim_list_wins(),
  })

  H.feed("u")
  H.wait(function()
    return vim.deep_equal(H.lines(), original)
  end, 5000, "one undo to revert the fix")
  H.result("undone", { lines = H.lines() })
  H.feed("<C-r>")
  H.wait(function()
    return not vim.deep_equal(H.lines(), original)
  end, 5000, "redo")
  H.feed("u")
  H.wait(function()
    return vim.deep_equal(H.lines(), original)
  end, 5000, "undo again")

  H.feed("5GVj:TandemFix<CR>")
  done = H.wait_event("TandemEditDone", 15000)
  H.result("discarded", { applied = done.applied, lines = H.lines(), asked = asked[2] })

  H.feed("5GVj:TandemFix<CR>")
  done = H.wait_event("TandemEditDone", 15000)
  H.result("stale", { applied = done.applied, lines = H.lines() })
  H.feed("u")
  H.wait(function()
    return vim.deep_equal(H.lines(), original)
  end, 5000, "the edit made meanwhile to be undone")

  -- Write tests: a new file next to the source, opened in a split
  local source = api.nvim_get_current_buf()
  H.feed("5GVj:TandemTests<CR>")
  done = H.wait_event("TandemEditDone", 15000)
  local test_buf = vim.fn.bufnr("test_app.py")
  H.result("tests", {
    applied = done.applied,
    diff = done.diff,
    source_unchanged = vim.deep_equal(H.lines(source), original),
    lines = test_buf ~= -1 and H.lines(test_buf) or nil,
    shown = test_buf ~= -1 and vim.fn.bufwinid(test_buf) ~= -1,
  })
end)
