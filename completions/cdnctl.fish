# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_cdnctl_global_optspecs
    string join \n master= request-timeout= no-headers h/help V/version
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

complete -c cdnctl -n "__fish_cdnctl_needs_command" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_needs_command" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_needs_command" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -s V -l version -d 'Print version'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "nodes" -d 'List and inspect edge nodes'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "config" -d 'Push, roll back and inspect versioned configuration'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "exec" -d 'Run a command on one node (like ssh) or many (prefixed output)'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "completion" -d 'Print shell completions (bash, zsh, fish, powershell, elvish)'
complete -c cdnctl -n "__fish_cdnctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and not __fish_seen_subcommand_from list ls show help" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
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
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from list" -s w -l watch -d 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted'
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
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -s w -l watch -d 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format (`table` and `wide` print a key: value list)' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "list" -d 'List nodes with their state, address, labels and figures'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show everything the master knows about one node'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand nodes; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and not __fish_seen_subcommand_from push rollback status history show diff help" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
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
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l all -d 'Every node (the default when no --node or --selector is given)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l dry-run -d 'Validate and show what would happen; store nothing'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l no-wait -d 'Return once the master stored the version; do not wait for nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l wait -d 'Wait until every online target answered (default; bounded by --timeout)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from push" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -s n -l node -d 'Only this node; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -s l -l selector -d 'Only nodes whose labels match `key=value[,key=value...]`; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l timeout -d 'How long to wait for the nodes\' answers; later ones are `pending`' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -s o -l output -d 'Output format of the final report' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l all -d 'Every node (the default when no --node or --selector is given)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l no-wait -d 'Return once the master stored the version; do not wait for nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l wait -d 'Wait until every online target answered (default; bounded by --timeout)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from rollback" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -s n -l node -d 'Only this node; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -s l -l selector -d 'Only nodes whose labels match `key=value[,key=value...]`; repeatable' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l all -d 'Every node (the default when no --node or --selector is given)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l limit -d 'Show at most this many versions (0 = all)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from history" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from diff" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand config; and __fish_seen_subcommand_from diff" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
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
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l all -d 'Run on every node'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s i -l stdin -d 'Forward local stdin (default: when stdin is not a terminal; single node only)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s t -l tty -d 'Allocate a terminal on the node (as ssh -t): the local terminal goes raw, window size changes are forwarded; stdout and stderr merge'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -s h -l help -d 'Print help'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -a "history" -d 'Sessions run through the master, newest first (the audit log)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and not __fish_seen_subcommand_from history help" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l limit -d 'Show at most this many sessions (0 = all)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -s o -l output -d 'Output format' -r -f -a "table\t'A table of the main columns'
wide\t'A table with every column'
json\t'JSON, for scripts'
yaml\t'YAML, for scripts'"
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from history" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from help" -f -a "history" -d 'Sessions run through the master, newest first (the audit log)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand exec; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -l master -d 'Master address (host:port)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -l request-timeout -d 'Give up on the master after this long (connecting and each call)' -r
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -l no-headers -d 'Print table rows without the header line (for scripts)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand completion" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec completion help" -f -a "nodes" -d 'List and inspect edge nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec completion help" -f -a "config" -d 'Push, roll back and inspect versioned configuration'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec completion help" -f -a "exec" -d 'Run a command on one node (like ssh) or many (prefixed output)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec completion help" -f -a "completion" -d 'Print shell completions (bash, zsh, fish, powershell, elvish)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and not __fish_seen_subcommand_from nodes config exec completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from nodes" -f -a "list" -d 'List nodes with their state, address, labels and figures'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from nodes" -f -a "show" -d 'Show everything the master knows about one node'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "push" -d 'Store FILE as a new version and apply it on the target nodes'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "rollback" -d 'Make an earlier version desired again and apply it (same progress)'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "status" -d 'Per node: desired and applied version, in sync or not, drift, last error'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "history" -d 'Stored versions, newest first'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Print the content of a version'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "diff" -d 'Unified diff between two versions'
complete -c cdnctl -n "__fish_cdnctl_using_subcommand help; and __fish_seen_subcommand_from exec" -f -a "history" -d 'Sessions run through the master, newest first (the audit log)'
