--- `:TandemContext`: what a completion at the cursor would send to the model.
---
--- Runs `tandem context --json PATH:LINE:COL` (the server's own context engine, with the
--- plugin's settings) on the saved file and shows the parts and the prompt in a scratch
--- buffer; `:TandemContext!` shows the raw JSON.
local M = {}
local api = vim.api
local util = require("tandem.util")
local config = require("tandem.config")

M.BUFNAME = "tandem://context"

--- The parts table and the prompt, from `tandem context --json`'s answer.
function M.render(data, location)
  local lines = {
    "# Tandem context for " .. location,
    "",
    ("model:     %s (template %s)"):format(tostring(data.model), tostring(data.template)),
    ("tokens:    %s of %s, counted with %s%s"):format(
      tostring(data.tokens),
      tostring(data.budget),
      tostring(data.tokenizer),
      data.exact and " (exact)" or ""
    ),
    ("shape:     %s"):format(data.multiline and "block" or "single line"),
    "",
    "## Parts",
  }
  local function part_lines(parts)
    for _, part in ipairs(parts or {}) do
      lines[#lines + 1] = ("- %-10s %5s tokens  %s"):format(
        tostring(part.kind),
        tostring(part.tokens),
        tostring(part.path or "")
      )
    end
  end
  part_lines(data.parts)
  if data.dropped and #data.dropped > 0 then
    vim.list_extend(lines, { "", "## Dropped (over budget)" })
    part_lines(data.dropped)
  end
  vim.list_extend(lines, { "", "## Prompt", "" })
  local prompt = data.prompt
  if type(prompt) ~= "string" then
    prompt = vim.json.encode(prompt)
  end
  vim.list_extend(lines, vim.split(prompt, "\n", { plain = true }))
  return lines
end

function M.command(opts)
  local bufnr = api.nvim_get_current_buf()
  local path = api.nvim_buf_get_name(bufnr)
  if path == "" or vim.bo[bufnr].buftype ~= "" then
    util.notify("the buffer is not a file", vim.log.levels.ERROR)
    return
  end
  if vim.bo[bufnr].modified then
    local message = "unsaved changes are not included (:w first); showing the saved file"
    util.notify(message, vim.log.levels.WARN)
  end
  local row, col = unpack(api.nvim_win_get_cursor(0))
  local column = util.char_of(util.line(bufnr, row - 1), col, "utf-32") + 1
  local location = ("%s:%d:%d"):format(path, row, column)
  local argv, env = util.cli(config.options, "context", { "--json", location })
  local root = util.root(bufnr, config.options.root_markers)
  local on_exit = vim.schedule_wrap(function(result)
    if result.code ~= 0 then
      local message = vim.trim(result.stderr or "")
      if message == "" then
        message = "tandem context exited with " .. result.code
      end
      util.notify(message, vim.log.levels.ERROR)
      return
    end
    local lines
    if opts.bang then
      lines = vim.split(result.stdout, "\n", { plain = true, trimempty = true })
    else
      local decoded, data = pcall(vim.json.decode, result.stdout)
      if not decoded or type(data) ~= "table" then
        util.notify("tandem context printed something that is not JSON", vim.log.levels.ERROR)
        return
      end
      lines = M.render(data, vim.fn.fnamemodify(path, ":~:.") .. (":%d:%d"):format(row, column))
    end
    util.scratch(M.BUFNAME, lines, opts.bang and "json" or "markdown")
    pcall(api.nvim_exec_autocmds, "User", { pattern = "TandemContextShown", modeline = false })
  end)
  local ok, err = pcall(vim.system, argv, { cwd = root, env = env, text = true }, on_exit)
  if not ok then
    util.notify(("cannot run %s: %s"):format(argv[1], tostring(err)), vim.log.levels.ERROR)
  end
end

return M
