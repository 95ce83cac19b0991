--- The code actions that edit: `:TandemFix`, `:TandemDocstring`, `:TandemTests`.
---
--- Asks the server for its code actions on the range (`textDocument/codeAction`, titles
--- only: free), resolves the chosen one (`codeAction/resolve`: the model call) and shows the
--- WorkspaceEdit it returns as a unified diff; on confirmation applies it with
--- vim.lsp.util.apply_workspace_edit, as one undo step.
local M = {}
local api = vim.api
local util = require("tandem.util")
local config = require("tandem.config")

M.ACTIONS = {
  fix = { kind = "quickfix", title = "Tandem: Fix", label = "fix" },
  docstring = {
    kind = "refactor.rewrite",
    title = "Tandem: Add docstring/comments",
    label = "docstring",
  },
  tests = { kind = "source", title = "Tandem: Write tests", label = "tests" },
}

local function done(data)
  local event = { pattern = "TandemEditDone", modeline = false, data = data }
  pcall(api.nvim_exec_autocmds, "User", event)
end

-- ---- what an edit would do --------------------------------------------------------------------

--- {uri, version?, edits[]} for each document the edit changes, in order.
local function document_edits(edit)
  local out = {}
  if edit.documentChanges then
    for _, change in ipairs(edit.documentChanges) do
      if change.textDocument and change.edits then
        out[#out + 1] = {
          uri = change.textDocument.uri,
          version = change.textDocument.version,
          edits = change.edits,
        }
      end
    end
  elseif edit.changes then
    for uri, edits in pairs(edit.changes) do
      out[#out + 1] = { uri = uri, edits = edits }
    end
  end
  return out
end

--- The lines of a document now: from its buffer when loaded, else from disk (none if new).
local function current_lines(uri)
  local fname = vim.uri_to_fname(uri)
  local bufnr = vim.fn.bufnr(fname)
  if bufnr ~= -1 and api.nvim_buf_is_loaded(bufnr) then
    return api.nvim_buf_get_lines(bufnr, 0, -1, false), bufnr
  end
  if vim.fn.filereadable(fname) == 1 then
    return vim.fn.readfile(fname), nil
  end
  return {}, nil
end

--- The text after applying LSP text edits to `lines` (positions in `encoding`).
function M.apply_to_lines(lines, edits, encoding)
  local text = #lines > 0 and (table.concat(lines, "\n") .. "\n") or ""
  local starts, offset = {}, 0
  for i, line in ipairs(lines) do
    starts[i] = offset
    offset = offset + #line + 1
  end
  local function at(pos)
    local line = lines[pos.line + 1]
    if not line then
      return #text
    end
    return starts[pos.line + 1] + util.byte_of(line, pos.character, encoding)
  end
  local sorted = {}
  for i, edit in ipairs(edits) do
    sorted[#sorted + 1] = {
      i = i,
      s = at(edit.range.start),
      e = at(edit.range["end"]),
      text = edit.newText,
    }
  end
  table.sort(sorted, function(a, b)
    if a.s ~= b.s then
      return a.s > b.s
    end
    return a.i > b.i
  end)
  for _, edit in ipairs(sorted) do
    text = text:sub(1, edit.s) .. edit.text .. text:sub(edit.e + 1)
  end
  return text, (#lines > 0 and (table.concat(lines, "\n") .. "\n") or "")
end

local diff = (vim.text and vim.text.diff) or vim.diff

--- A unified diff (git style, with file headers) of what the edit would change, and the
--- text each document would have.
function M.diff_lines(edit, encoding)
  local out, expected = {}, {}
  for _, doc in ipairs(document_edits(edit)) do
    local lines = current_lines(doc.uri)
    local new, old = M.apply_to_lines(lines, doc.edits, encoding)
    expected[doc.uri] = new
    if new ~= old then
      local name = vim.fn.fnamemodify(vim.uri_to_fname(doc.uri), ":~:.")
      out[#out + 1] = "--- " .. (#lines > 0 and ("a/" .. name) or "/dev/null")
      out[#out + 1] = "+++ b/" .. name
      local hunks = diff(old, new, { result_type = "unified", ctxlen = 3 })
      vim.list_extend(out, vim.split(hunks, "\n", { plain = true, trimempty = true }))
    end
  end
  return out, expected
end

-- ---- preview and apply ----------------------------------------------------------------------

local function open_preview(lines, title)
  local buf = api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = "wipe"
  api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].filetype = "diff"
  local o = config.options.chat
  local win
  if o.layout == "split" then
    vim.cmd("botright split")
    win = api.nvim_get_current_win()
    api.nvim_win_set_buf(win, buf)
  else
    local columns, rows = vim.o.columns, vim.o.lines - vim.o.cmdheight - 2
    local width = math.max(math.min(columns - 4, 100), math.min(columns, 40))
    local height = math.max(math.min(#lines, math.floor(rows * 0.7)), 1)
    local win_opts = {
      relative = "editor",
      width = width,
      height = height,
      row = math.floor((rows - height) / 2),
      col = math.floor((columns - width) / 2),
      style = "minimal",
      border = o.border,
    }
    if o.border ~= "none" and o.border ~= "" then
      win_opts.title, win_opts.title_pos = title, "center"
    end
    win = api.nvim_open_win(buf, false, win_opts)
  end
  return buf, win
end

--- Whether a document changed since the server made the edit (it would be refused), or
--- since the request (`ticks`: bufnr -> changedtick then), for edits without versions.
local function stale(edit, ticks)
  for bufnr, tick in pairs(ticks or {}) do
    if api.nvim_buf_is_valid(bufnr) and api.nvim_buf_get_changedtick(bufnr) ~= tick then
      return true
    end
  end
  for _, doc in ipairs(document_edits(edit)) do
    local bufnr = vim.fn.bufnr(vim.uri_to_fname(doc.uri))
    if doc.version and doc.version > 0 and bufnr ~= -1 and api.nvim_buf_is_loaded(bufnr) then
      -- the version Neovim sent last is the buffer's changedtick
      if api.nvim_buf_get_changedtick(bufnr) > doc.version then
        return true
      end
    end
  end
  return false
end

--- Apply a WorkspaceEdit as one undo step in each buffer it touches. `expected` (uri ->
--- text) is what the preview showed: apply_text_edits appends text inserted past the last
--- line (at the end of the file, or into a new file) with its final newline as an extra
--- empty line, which is taken away again.
function M.apply(edit, encoding, expected, ticks)
  if stale(edit, ticks) then
    local message = "the buffer changed since the edit was made: run the command again"
    util.notify(message, vim.log.levels.WARN)
    return false
  end
  vim.o.undolevels = vim.o.undolevels -- starts a new undo block (:help undo-break)
  vim.lsp.util.apply_workspace_edit(edit, encoding)
  for uri, text in pairs(expected or {}) do
    local bufnr = vim.fn.bufnr(vim.uri_to_fname(uri))
    if bufnr ~= -1 and api.nvim_buf_is_loaded(bufnr) and text:sub(-1) == "\n" then
      local want = vim.split(text:sub(1, -2), "\n", { plain = true })
      local have = api.nvim_buf_get_lines(bufnr, 0, -1, false)
      local extra = #have == #want + 1 and have[#have] == ""
      if extra and vim.deep_equal(vim.list_slice(have, 1, #want), want) then
        api.nvim_buf_set_lines(bufnr, -2, -1, false, {})
      end
    end
  end
  return true
end

function M.preview(client, action, spec, ticks)
  local encoding = client.offset_encoding
  local lines, expected = M.diff_lines(action.edit, encoding)
  if #lines == 0 then
    util.notify("the model proposes no change")
    return done({ action = spec.label, applied = false })
  end
  local buf, win = open_preview(lines, (" %s: apply? "):format(spec.title))
  M.last_diff = lines
  vim.cmd("redraw")
  local prompt = ("Apply %s?"):format(spec.title)
  vim.ui.select({ "Apply", "Discard" }, { prompt = prompt }, function(choice)
    if api.nvim_win_is_valid(win) then
      api.nvim_win_close(win, true)
    end
    if api.nvim_buf_is_valid(buf) then
      api.nvim_buf_delete(buf, { force = true })
    end
    local applied = choice == "Apply" and M.apply(action.edit, encoding, expected, ticks)
    if applied then
      -- a document not on screen (a new test file): show it
      for _, doc in ipairs(document_edits(action.edit)) do
        local fname = vim.uri_to_fname(doc.uri)
        if vim.fn.bufwinid(vim.fn.bufnr(fname)) == -1 then
          vim.cmd("split " .. vim.fn.fnameescape(fname))
          break
        end
      end
    end
    done({ action = spec.label, applied = applied, diff = lines })
  end)
end

--- `:TandemFix`, `:TandemDocstring`, `:TandemTests` on the range (default: the line).
function M.command(name, opts)
  local spec = assert(M.ACTIONS[name], name)
  local bufnr = api.nvim_get_current_buf()
  if not util.client(bufnr) then
    util.notify("not running for this buffer (see :checkhealth tandem)", vim.log.levels.ERROR)
    return
  end
  local span = util.command_span(bufnr, opts)
  local ticks = { [bufnr] = api.nvim_buf_get_changedtick(bufnr) }
  util.when_ready(bufnr, function(client, why)
    if not client then
      util.notify(why, vim.log.levels.ERROR)
      return done({ action = spec.label, applied = false, error = why })
    end
    local function fail(message)
      util.notify(message, vim.log.levels.ERROR)
      done({ action = spec.label, applied = false, error = message })
    end
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(bufnr) },
      range = util.lsp_range(bufnr, span, client.offset_encoding),
      context = { diagnostics = {}, only = { spec.kind } },
    }
    util.request(client, "textDocument/codeAction", params, function(err, found)
      if err then
        return fail(err.message)
      end
      local action
      for _, candidate in ipairs(found or {}) do
        local data = type(candidate.data) == "table" and candidate.data or {}
        if data.action == name or candidate.title == spec.title then
          action = candidate
          break
        end
      end
      if not action then
        return fail("nothing to " .. spec.label .. " here: select some code")
      end
      api.nvim_echo({ { ("Tandem: asking for a %s…"):format(spec.label), "Comment" } }, false, {})
      util.request(client, "codeAction/resolve", action, function(rerr, resolved)
        if rerr then
          return fail(rerr.message)
        end
        if type(resolved) ~= "table" or type(resolved.edit) ~= "table" then
          return fail("the server proposed no edit")
        end
        M.preview(client, resolved, spec, ticks)
      end, bufnr)
    end, bufnr)
  end)
end

return M
