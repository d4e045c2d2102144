# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_cdnctl_global_optspecs
    string join \n master= context= credential= insecure request-timeout= no-headers h/help V/version
end

function __fish_cdnctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_cdnctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_cdnctl_using_subcommand
    set -l cmd (__fish_cdnctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c cdnctl -n "__fish_cdnctl_needs_command" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_needs_command" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_needs_command" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_needs_command" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_needs_command" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -s V -l version -d 'Print version'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "nodes" -d 'List and inspect edge nodes'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "config" -d 'Push, roll back and inspect versioned configuration'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "exec" -d 'Run a command on one node (like ssh) or many (prefixed output)'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "context" -d 'Named masters and credentials (like kubectl config contexts)'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "whoami" -d 'Show the user and role the master sees for your credential'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "events" -d 'What happens on the master: nodes online/offline, pushes, exec sessions, token, user and certificate changes'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "audit" -d 'Who pushed, rolled back, ran commands, changed tokens, users and certificates, and with what result (admin)'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "completion" -d 'Print shell completions (bash, zsh, fish, powershell, elvish)'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -f -a "list" -d 'List nodes with their state, address, labels and figures'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -f -a "ls" -d 'List nodes with their state, address, labels and figures'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -f -a "show" -d 'Show everything the master knows about one node'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l status -d 'Only nodes in this state' -r -f -a "online\t''
degraded\t''
offline\t''"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -s l -l selector -d 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l interval -d 'How often --watch asks the master' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -s w -l watch -d 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l status -d 'Only nodes in this state' -r -f -a "online\t''
degraded\t''
offline\t''"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -s l -l selector -d 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l interval -d 'How often --watch asks the master' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -s w -l watch -d 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format (`table` and `wide` print a key: value list)' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "list" -d 'List nodes with their state, address, labels and figures'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show everything the master knows about one node'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -f -a "push" -d 'Store FILE as a new version and apply it on the target nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -f -a "rollback" -d 'Make an earlier version desired again and apply it (same progress)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -f -a "status" -d 'Per node: desired and applied version, in sync or not, drift, last error'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -f -a "history" -d 'Stored versions, newest first'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -f -a "show" -d 'Print the content of a version'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -f -a "diff" -d 'Unified diff between two versions'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -s n -l node -d 'Only this node; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -s l -l selector -d 'Only nodes whose labels match `key=value[,key=value...]`; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -s m -l message -d 'Note stored with the version' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l timeout -d 'How long to wait for the nodes\' answers; later ones are `pending`' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -s o -l output -d 'Output format of the final report' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l all -d 'Every node (the default when no --node or --selector is given)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l dry-run -d 'Validate and show what would happen; store nothing'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l no-wait -d 'Return once the master stored the version; do not wait for nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l wait -d 'Wait until every online target answered (default; bounded by --timeout)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -s n -l node -d 'Only this node; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -s l -l selector -d 'Only nodes whose labels match `key=value[,key=value...]`; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l timeout -d 'How long to wait for the nodes\' answers; later ones are `pending`' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -s o -l output -d 'Output format of the final report' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l all -d 'Every node (the default when no --node or --selector is given)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l no-wait -d 'Return once the master stored the version; do not wait for nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l wait -d 'Wait until every online target answered (default; bounded by --timeout)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -s n -l node -d 'Only this node; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -s l -l selector -d 'Only nodes whose labels match `key=value[,key=value...]`; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l all -d 'Every node (the default when no --node or --selector is given)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l limit -d 'Show at most this many versions (0 = all)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from diff" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from diff" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from diff" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from diff" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from diff" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from diff" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "push" -d 'Store FILE as a new version and apply it on the target nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "rollback" -d 'Make an earlier version desired again and apply it (same progress)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "status" -d 'Per node: desired and applied version, in sync or not, drift, last error'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "history" -d 'Stored versions, newest first'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the content of a version'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "diff" -d 'Unified diff between two versions'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s n -l node -d 'Run on this node (repeatable; fan-out with prefixed output)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s l -l selector -d 'Run on nodes whose labels match `key=value[,key=value...]`' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s e -l env -d 'Set an environment variable for the command; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s w -l workdir -d 'Working directory on the node' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l timeout -d 'Kill the remote command after this long and exit 124' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l parallel -d 'Nodes run at once in a fan-out' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l all -d 'Run on every node'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s i -l stdin -d 'Forward local stdin (default: when stdin is not a terminal; single node only)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s t -l tty -d 'Allocate a terminal on the node (as ssh -t): the local terminal goes raw, window size changes are forwarded; stdout and stderr merge'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -a "history" -d 'Sessions run through the master, newest first (the audit log)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l limit -d 'Show at most this many sessions (0 = all)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from help" -f -a "history" -d 'Sessions run through the master, newest first (the audit log)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -f -a "list" -d 'List contexts; `*` marks the current one'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -f -a "ls" -d 'List contexts; `*` marks the current one'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -f -a "use" -d 'Make NAME the current context'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -f -a "add" -d 'Add a context from the credential file given with --credential (`masterd` wrote `admin.credential` in its data directory; `masterd user add` writes others); --master replaces the address in it. The credential is copied into the config file. With --insecure and --master instead: a context for a master started --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -f -a "remove" -d 'Remove a context'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -f -a "rm" -d 'Remove a context'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and not __fish_seen_subcommand_from list ls use add remove rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from list" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from list" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from list" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from list" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from list" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from list" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from ls" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from ls" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from ls" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from ls" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from ls" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from ls" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from use" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from use" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from use" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from use" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from use" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from use" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from use" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from add" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from add" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from add" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from add" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from add" -l force -d 'Replace a context of the same name'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from add" -l use -d 'Make it the current context (the first context always is)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from add" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from add" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from remove" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from remove" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from remove" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from remove" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from remove" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from remove" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from rm" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from rm" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from rm" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from rm" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from rm" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from rm" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "list" -d 'List contexts; `*` marks the current one'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "use" -d 'Make NAME the current context'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a context from the credential file given with --credential (`masterd` wrote `admin.credential` in its data directory; `masterd user add` writes others); --master replaces the address in it. The credential is copied into the config file. With --insecure and --master instead: a context for a master started --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a context'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand whoami" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand whoami" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand whoami" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand whoami" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand whoami" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand whoami" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand whoami" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand whoami" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -l limit -d 'Recent events printed first' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -s o -l output -d 'Output format; json and yaml print one document per event (JSON: one object per line)' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -s f -l follow -d 'Keep printing new events until interrupted (as `kubectl get events -w`)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand events" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -l limit -d 'Newest entries to show' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -l user -d 'Only entries of this user' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -l action -d 'Only this action, or a family of them: push, rollback, exec, token (token.create, token.revoke), user, node' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand audit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -l master -d 'Master address (host:port); overrides the context\'s' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -l context -d 'Use this context of the config file instead of the current one' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -l credential -d 'Use this credential file (from masterd) instead of a context' -r -F
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -l insecure -d 'Plaintext, no credential: only for a master started with --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec context whoami events audit completion help" -f -a "nodes" -d 'List and inspect edge nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec context whoami events audit completion help" -f -a "config" -d 'Push, roll back and inspect versioned configuration'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec context whoami events audit completion help" -f -a "exec" -d 'Run a command on one node (like ssh) or many (prefixed output)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec context whoami events audit completion help" -f -a "context" -d 'Named masters and credentials (like kubectl config contexts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec context whoami events audit completion help" -f -a "whoami" -d 'Show the user and role the master sees for your credential'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec context whoami events audit completion help" -f -a "events" -d 'What happens on the master: nodes online/offline, pushes, exec sessions, token, user and certificate changes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec context whoami events audit completion help" -f -a "audit" -d 'Who pushed, rolled back, ran commands, changed tokens, users and certificates, and with what result (admin)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec context whoami events audit completion help" -f -a "completion" -d 'Print shell completions (bash, zsh, fish, powershell, elvish)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec context whoami events audit completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from nodes" -f -a "list" -d 'List nodes with their state, address, labels and figures'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from nodes" -f -a "show" -d 'Show everything the master knows about one node'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "push" -d 'Store FILE as a new version and apply it on the target nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "rollback" -d 'Make an earlier version desired again and apply it (same progress)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "status" -d 'Per node: desired and applied version, in sync or not, drift, last error'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "history" -d 'Stored versions, newest first'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Print the content of a version'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "diff" -d 'Unified diff between two versions'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from exec" -f -a "history" -d 'Sessions run through the master, newest first (the audit log)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from context" -f -a "list" -d 'List contexts; `*` marks the current one'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from context" -f -a "use" -d 'Make NAME the current context'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from context" -f -a "add" -d 'Add a context from the credential file given with --credential (`masterd` wrote `admin.credential` in its data directory; `masterd user add` writes others); --master replaces the address in it. The credential is copied into the config file. With --insecure and --master instead: a context for a master started --insecure'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from context" -f -a "remove" -d 'Remove a context'
