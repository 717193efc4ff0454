-- imspec for Neovim (0.10+): file type, comment string and the language server.
-- Copy to ~/.config/nvim/plugin/imspec.lua (or `require` it from init.lua).
-- Neovim does not run TextMate grammars, so there is no highlighting beyond what the
-- language server's diagnostics show; see docs/editing-specs.md.
vim.filetype.add({ extension = { imspec = "imspec" } })

vim.api.nvim_create_autocmd("FileType", {
  pattern = "imspec",
  callback = function(args)
    vim.bo[args.buf].commentstring = "// %s"
    vim.lsp.start({
      name = "imspec",
      cmd = { "imspec", "lsp" },
      root_dir = vim.fs.root(args.buf, { "Cargo.toml", ".git" }),
    })
  end,
})
