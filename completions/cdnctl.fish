complete --keep-order --exclusive --command cdnctl --arguments "(COMPLETE=fish cdnctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
