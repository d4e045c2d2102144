
use builtin;
use str;

set edit:completion:arg-completer[cdnctl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'cdnctl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'cdnctl'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand nodes 'List and inspect edge nodes'
            cand config 'Push, roll back and inspect versioned configuration'
            cand exec 'Run a command on one node (like ssh) or many (prefixed output)'
            cand context 'Named masters and credentials (like kubectl config contexts)'
            cand whoami 'Show the user and role the master sees for your credential'
            cand events 'What happens on the master: nodes online/offline, pushes, exec sessions, token, user and certificate changes'
            cand audit 'Who pushed, rolled back, ran commands, changed tokens, users and certificates, and with what result (admin)'
            cand completion 'Print shell completions (bash, zsh, fish, powershell, elvish)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;nodes'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand list 'List nodes with their state, address, labels and figures'
            cand ls 'List nodes with their state, address, labels and figures'
            cand show 'Show everything the master knows about one node'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;nodes;list'= {
            cand -o 'Output format'
            cand --output 'Output format'
            cand --status 'Only nodes in this state'
            cand -l 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable'
            cand --selector 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable'
            cand --interval 'How often --watch asks the master'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand -w 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted'
            cand --watch 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;nodes;ls'= {
            cand -o 'Output format'
            cand --output 'Output format'
            cand --status 'Only nodes in this state'
            cand -l 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable'
            cand --selector 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable'
            cand --interval 'How often --watch asks the master'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand -w 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted'
            cand --watch 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;nodes;show'= {
            cand -o 'Output format (`table` and `wide` print a key: value list)'
            cand --output 'Output format (`table` and `wide` print a key: value list)'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;nodes;help'= {
            cand list 'List nodes with their state, address, labels and figures'
            cand show 'Show everything the master knows about one node'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;nodes;help;list'= {
        }
        &'cdnctl;nodes;help;show'= {
        }
        &'cdnctl;nodes;help;help'= {
        }
        &'cdnctl;config'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand push 'Store FILE as a new version and apply it on the target nodes'
            cand rollback 'Make an earlier version desired again and apply it (same progress)'
            cand status 'Per node: desired and applied version, in sync or not, drift, last error'
            cand history 'Stored versions, newest first'
            cand show 'Print the content of a version'
            cand diff 'Unified diff between two versions'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;config;push'= {
            cand -n 'Only this node; repeatable'
            cand --node 'Only this node; repeatable'
            cand -l 'Only nodes whose labels match `key=value[,key=value...]`; repeatable'
            cand --selector 'Only nodes whose labels match `key=value[,key=value...]`; repeatable'
            cand -m 'Note stored with the version'
            cand --message 'Note stored with the version'
            cand --timeout 'How long to wait for the nodes'' answers; later ones are `pending`'
            cand -o 'Output format of the final report'
            cand --output 'Output format of the final report'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --all 'Every node (the default when no --node or --selector is given)'
            cand --dry-run 'Validate and show what would happen; store nothing'
            cand --no-wait 'Return once the master stored the version; do not wait for nodes'
            cand --wait 'Wait until every online target answered (default; bounded by --timeout)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;config;rollback'= {
            cand -n 'Only this node; repeatable'
            cand --node 'Only this node; repeatable'
            cand -l 'Only nodes whose labels match `key=value[,key=value...]`; repeatable'
            cand --selector 'Only nodes whose labels match `key=value[,key=value...]`; repeatable'
            cand --timeout 'How long to wait for the nodes'' answers; later ones are `pending`'
            cand -o 'Output format of the final report'
            cand --output 'Output format of the final report'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --all 'Every node (the default when no --node or --selector is given)'
            cand --no-wait 'Return once the master stored the version; do not wait for nodes'
            cand --wait 'Wait until every online target answered (default; bounded by --timeout)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;config;status'= {
            cand -n 'Only this node; repeatable'
            cand --node 'Only this node; repeatable'
            cand -l 'Only nodes whose labels match `key=value[,key=value...]`; repeatable'
            cand --selector 'Only nodes whose labels match `key=value[,key=value...]`; repeatable'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --all 'Every node (the default when no --node or --selector is given)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;config;history'= {
            cand --limit 'Show at most this many versions (0 = all)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;config;show'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'cdnctl;config;diff'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'cdnctl;config;help'= {
            cand push 'Store FILE as a new version and apply it on the target nodes'
            cand rollback 'Make an earlier version desired again and apply it (same progress)'
            cand status 'Per node: desired and applied version, in sync or not, drift, last error'
            cand history 'Stored versions, newest first'
            cand show 'Print the content of a version'
            cand diff 'Unified diff between two versions'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;config;help;push'= {
        }
        &'cdnctl;config;help;rollback'= {
        }
        &'cdnctl;config;help;status'= {
        }
        &'cdnctl;config;help;history'= {
        }
        &'cdnctl;config;help;show'= {
        }
        &'cdnctl;config;help;diff'= {
        }
        &'cdnctl;config;help;help'= {
        }
        &'cdnctl;exec'= {
            cand -n 'Run on this node (repeatable; fan-out with prefixed output)'
            cand --node 'Run on this node (repeatable; fan-out with prefixed output)'
            cand -l 'Run on nodes whose labels match `key=value[,key=value...]`'
            cand --selector 'Run on nodes whose labels match `key=value[,key=value...]`'
            cand -e 'Set an environment variable for the command; repeatable'
            cand --env 'Set an environment variable for the command; repeatable'
            cand -w 'Working directory on the node'
            cand --workdir 'Working directory on the node'
            cand --timeout 'Kill the remote command after this long and exit 124'
            cand --parallel 'Nodes run at once in a fan-out'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --all 'Run on every node'
            cand -i 'Forward local stdin (default: when stdin is not a terminal; single node only)'
            cand --stdin 'Forward local stdin (default: when stdin is not a terminal; single node only)'
            cand -t 'Allocate a terminal on the node (as ssh -t): the local terminal goes raw, window size changes are forwarded; stdout and stderr merge'
            cand --tty 'Allocate a terminal on the node (as ssh -t): the local terminal goes raw, window size changes are forwarded; stdout and stderr merge'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand history 'Sessions run through the master, newest first (the audit log)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;exec;history'= {
            cand --limit 'Show at most this many sessions (0 = all)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;exec;help'= {
            cand history 'Sessions run through the master, newest first (the audit log)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;exec;help;history'= {
        }
        &'cdnctl;exec;help;help'= {
        }
        &'cdnctl;context'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand list 'List contexts; `*` marks the current one'
            cand ls 'List contexts; `*` marks the current one'
            cand use 'Make NAME the current context'
            cand add 'Add a context from the credential file given with --credential (`masterd` wrote `admin.credential` in its data directory; `masterd user add` writes others); --master replaces the address in it. The credential is copied into the config file. With --insecure and --master instead: a context for a master started --insecure'
            cand remove 'Remove a context'
            cand rm 'Remove a context'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;context;list'= {
            cand -o 'Output format'
            cand --output 'Output format'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;context;ls'= {
            cand -o 'Output format'
            cand --output 'Output format'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;context;use'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;context;add'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --force 'Replace a context of the same name'
            cand --use 'Make it the current context (the first context always is)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;context;remove'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'cdnctl;context;rm'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'cdnctl;context;help'= {
            cand list 'List contexts; `*` marks the current one'
            cand use 'Make NAME the current context'
            cand add 'Add a context from the credential file given with --credential (`masterd` wrote `admin.credential` in its data directory; `masterd user add` writes others); --master replaces the address in it. The credential is copied into the config file. With --insecure and --master instead: a context for a master started --insecure'
            cand remove 'Remove a context'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;context;help;list'= {
        }
        &'cdnctl;context;help;use'= {
        }
        &'cdnctl;context;help;add'= {
        }
        &'cdnctl;context;help;remove'= {
        }
        &'cdnctl;context;help;help'= {
        }
        &'cdnctl;whoami'= {
            cand -o 'Output format'
            cand --output 'Output format'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;events'= {
            cand --limit 'Recent events printed first'
            cand -o 'Output format; json and yaml print one document per event (JSON: one object per line)'
            cand --output 'Output format; json and yaml print one document per event (JSON: one object per line)'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand -f 'Keep printing new events until interrupted (as `kubectl get events -w`)'
            cand --follow 'Keep printing new events until interrupted (as `kubectl get events -w`)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;audit'= {
            cand --limit 'Newest entries to show'
            cand --user 'Only entries of this user'
            cand --action 'Only this action, or a family of them: push, rollback, exec, token (token.create, token.revoke), user, node'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;completion'= {
            cand --master 'Master address (host:port); overrides the context''s'
            cand --context 'Use this context of the config file instead of the current one'
            cand --credential 'Use this credential file (from masterd) instead of a context'
            cand --request-timeout 'Give up on the master after this long (connecting and each call)'
            cand --insecure 'Plaintext, no credential: only for a master started with --insecure'
            cand --no-headers 'Print table rows without the header line (for scripts)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'cdnctl;help'= {
            cand nodes 'List and inspect edge nodes'
            cand config 'Push, roll back and inspect versioned configuration'
            cand exec 'Run a command on one node (like ssh) or many (prefixed output)'
            cand context 'Named masters and credentials (like kubectl config contexts)'
            cand whoami 'Show the user and role the master sees for your credential'
            cand events 'What happens on the master: nodes online/offline, pushes, exec sessions, token, user and certificate changes'
            cand audit 'Who pushed, rolled back, ran commands, changed tokens, users and certificates, and with what result (admin)'
            cand completion 'Print shell completions (bash, zsh, fish, powershell, elvish)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'cdnctl;help;nodes'= {
            cand list 'List nodes with their state, address, labels and figures'
            cand show 'Show everything the master knows about one node'
        }
        &'cdnctl;help;nodes;list'= {
        }
        &'cdnctl;help;nodes;show'= {
        }
        &'cdnctl;help;config'= {
            cand push 'Store FILE as a new version and apply it on the target nodes'
            cand rollback 'Make an earlier version desired again and apply it (same progress)'
            cand status 'Per node: desired and applied version, in sync or not, drift, last error'
            cand history 'Stored versions, newest first'
            cand show 'Print the content of a version'
            cand diff 'Unified diff between two versions'
        }
        &'cdnctl;help;config;push'= {
        }
        &'cdnctl;help;config;rollback'= {
        }
        &'cdnctl;help;config;status'= {
        }
        &'cdnctl;help;config;history'= {
        }
        &'cdnctl;help;config;show'= {
        }
        &'cdnctl;help;config;diff'= {
        }
        &'cdnctl;help;exec'= {
            cand history 'Sessions run through the master, newest first (the audit log)'
        }
        &'cdnctl;help;exec;history'= {
        }
        &'cdnctl;help;context'= {
            cand list 'List contexts; `*` marks the current one'
            cand use 'Make NAME the current context'
            cand add 'Add a context from the credential file given with --credential (`masterd` wrote `admin.credential` in its data directory; `masterd user add` writes others); --master replaces the address in it. The credential is copied into the config file. With --insecure and --master instead: a context for a master started --insecure'
            cand remove 'Remove a context'
        }
        &'cdnctl;help;context;list'= {
        }
        &'cdnctl;help;context;use'= {
        }
        &'cdnctl;help;context;add'= {
        }
        &'cdnctl;help;context;remove'= {
        }
        &'cdnctl;help;whoami'= {
        }
        &'cdnctl;help;events'= {
        }
        &'cdnctl;help;audit'= {
        }
        &'cdnctl;help;completion'= {
        }
        &'cdnctl;help;help'= {
        }
    ]
    $completions[$command]
}
