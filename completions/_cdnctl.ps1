
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'cdnctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'cdnctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'cdnctl' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('nodes', 'nodes', [CompletionResultType]::ParameterValue, 'List and inspect edge nodes')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Push, roll back and inspect versioned configuration')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a command on one node (like ssh) or many (prefixed output)')
            [CompletionResult]::new('context', 'context', [CompletionResultType]::ParameterValue, 'Named masters and credentials (like kubectl config contexts)')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show the user and role the master sees for your credential')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'What happens on the master: nodes online/offline, pushes, exec sessions, token, user and certificate changes')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Who pushed, rolled back, ran commands, changed tokens, users and certificates, and with what result (admin)')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print shell completions (bash, zsh, fish, powershell, elvish)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;nodes' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List nodes with their state, address, labels and figures')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List nodes with their state, address, labels and figures')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show everything the master knows about one node')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;nodes;list' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only nodes in this state')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('--selector', '--selector', [CompletionResultType]::ParameterName, 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'How often --watch asks the master')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;nodes;ls' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only nodes in this state')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('--selector', '--selector', [CompletionResultType]::ParameterName, 'Only nodes whose labels match, `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'How often --watch asks the master')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'After the list, print a row whenever a node changes state (as `kubectl get -w`), until interrupted')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;nodes;show' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format (`table` and `wide` print a key: value list)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format (`table` and `wide` print a key: value list)')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;nodes;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List nodes with their state, address, labels and figures')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show everything the master knows about one node')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;nodes;help;list' {
            break
        }
        'cdnctl;nodes;help;show' {
            break
        }
        'cdnctl;nodes;help;help' {
            break
        }
        'cdnctl;config' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Store FILE as a new version and apply it on the target nodes')
            [CompletionResult]::new('rollback', 'rollback', [CompletionResultType]::ParameterValue, 'Make an earlier version desired again and apply it (same progress)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Per node: desired and applied version, in sync or not, drift, last error')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Stored versions, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the content of a version')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Unified diff between two versions')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;config;push' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Only this node; repeatable')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Only this node; repeatable')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Only nodes whose labels match `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('--selector', '--selector', [CompletionResultType]::ParameterName, 'Only nodes whose labels match `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Note stored with the version')
            [CompletionResult]::new('--message', '--message', [CompletionResultType]::ParameterName, 'Note stored with the version')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for the nodes'' answers; later ones are `pending`')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of the final report')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of the final report')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every node (the default when no --node or --selector is given)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Validate and show what would happen; store nothing')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Return once the master stored the version; do not wait for nodes')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait until every online target answered (default; bounded by --timeout)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;config;rollback' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Only this node; repeatable')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Only this node; repeatable')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Only nodes whose labels match `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('--selector', '--selector', [CompletionResultType]::ParameterName, 'Only nodes whose labels match `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for the nodes'' answers; later ones are `pending`')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of the final report')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of the final report')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every node (the default when no --node or --selector is given)')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'Return once the master stored the version; do not wait for nodes')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait until every online target answered (default; bounded by --timeout)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;config;status' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Only this node; repeatable')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Only this node; repeatable')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Only nodes whose labels match `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('--selector', '--selector', [CompletionResultType]::ParameterName, 'Only nodes whose labels match `key=value[,key=value...]`; repeatable')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Every node (the default when no --node or --selector is given)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;config;history' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Show at most this many versions (0 = all)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;config;show' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'cdnctl;config;diff' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'cdnctl;config;help' {
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Store FILE as a new version and apply it on the target nodes')
            [CompletionResult]::new('rollback', 'rollback', [CompletionResultType]::ParameterValue, 'Make an earlier version desired again and apply it (same progress)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Per node: desired and applied version, in sync or not, drift, last error')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Stored versions, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the content of a version')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Unified diff between two versions')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;config;help;push' {
            break
        }
        'cdnctl;config;help;rollback' {
            break
        }
        'cdnctl;config;help;status' {
            break
        }
        'cdnctl;config;help;history' {
            break
        }
        'cdnctl;config;help;show' {
            break
        }
        'cdnctl;config;help;diff' {
            break
        }
        'cdnctl;config;help;help' {
            break
        }
        'cdnctl;exec' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Run on this node (repeatable; fan-out with prefixed output)')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Run on this node (repeatable; fan-out with prefixed output)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Run on nodes whose labels match `key=value[,key=value...]`')
            [CompletionResult]::new('--selector', '--selector', [CompletionResultType]::ParameterName, 'Run on nodes whose labels match `key=value[,key=value...]`')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'Set an environment variable for the command; repeatable')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'Set an environment variable for the command; repeatable')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Working directory on the node')
            [CompletionResult]::new('--workdir', '--workdir', [CompletionResultType]::ParameterName, 'Working directory on the node')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Kill the remote command after this long and exit 124')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Nodes run at once in a fan-out')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Run on every node')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Forward local stdin (default: when stdin is not a terminal; single node only)')
            [CompletionResult]::new('--stdin', '--stdin', [CompletionResultType]::ParameterName, 'Forward local stdin (default: when stdin is not a terminal; single node only)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Allocate a terminal on the node (as ssh -t): the local terminal goes raw, window size changes are forwarded; stdout and stderr merge')
            [CompletionResult]::new('--tty', '--tty', [CompletionResultType]::ParameterName, 'Allocate a terminal on the node (as ssh -t): the local terminal goes raw, window size changes are forwarded; stdout and stderr merge')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Sessions run through the master, newest first (the audit log)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;exec;history' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Show at most this many sessions (0 = all)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;exec;help' {
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Sessions run through the master, newest first (the audit log)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;exec;help;history' {
            break
        }
        'cdnctl;exec;help;help' {
            break
        }
        'cdnctl;context' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List contexts; `*` marks the current one')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List contexts; `*` marks the current one')
            [CompletionResult]::new('use', 'use', [CompletionResultType]::ParameterValue, 'Make NAME the current context')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a context from the credential file given with --credential (`masterd` wrote `admin.credential` in its data directory; `masterd user add` writes others); --master replaces the address in it. The credential is copied into the config file. With --insecure and --master instead: a context for a master started --insecure')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a context')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove a context')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;context;list' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;context;ls' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;context;use' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;context;add' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace a context of the same name')
            [CompletionResult]::new('--use', '--use', [CompletionResultType]::ParameterName, 'Make it the current context (the first context always is)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;context;remove' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'cdnctl;context;rm' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'cdnctl;context;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List contexts; `*` marks the current one')
            [CompletionResult]::new('use', 'use', [CompletionResultType]::ParameterValue, 'Make NAME the current context')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a context from the credential file given with --credential (`masterd` wrote `admin.credential` in its data directory; `masterd user add` writes others); --master replaces the address in it. The credential is copied into the config file. With --insecure and --master instead: a context for a master started --insecure')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a context')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;context;help;list' {
            break
        }
        'cdnctl;context;help;use' {
            break
        }
        'cdnctl;context;help;add' {
            break
        }
        'cdnctl;context;help;remove' {
            break
        }
        'cdnctl;context;help;help' {
            break
        }
        'cdnctl;whoami' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;events' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Recent events printed first')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format; json and yaml print one document per event (JSON: one object per line)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format; json and yaml print one document per event (JSON: one object per line)')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Keep printing new events until interrupted (as `kubectl get events -w`)')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep printing new events until interrupted (as `kubectl get events -w`)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;audit' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Newest entries to show')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only entries of this user')
            [CompletionResult]::new('--action', '--action', [CompletionResultType]::ParameterName, 'Only this action, or a family of them: push, rollback, exec, token (token.create, token.revoke), user, node')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;completion' {
            [CompletionResult]::new('--master', '--master', [CompletionResultType]::ParameterName, 'Master address (host:port); overrides the context''s')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Use this context of the config file instead of the current one')
            [CompletionResult]::new('--credential', '--credential', [CompletionResultType]::ParameterName, 'Use this credential file (from masterd) instead of a context')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Give up on the master after this long (connecting and each call)')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Plaintext, no credential: only for a master started with --insecure')
            [CompletionResult]::new('--no-headers', '--no-headers', [CompletionResultType]::ParameterName, 'Print table rows without the header line (for scripts)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'cdnctl;help' {
            [CompletionResult]::new('nodes', 'nodes', [CompletionResultType]::ParameterValue, 'List and inspect edge nodes')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Push, roll back and inspect versioned configuration')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a command on one node (like ssh) or many (prefixed output)')
            [CompletionResult]::new('context', 'context', [CompletionResultType]::ParameterValue, 'Named masters and credentials (like kubectl config contexts)')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show the user and role the master sees for your credential')
            [CompletionResult]::new('events', 'events', [CompletionResultType]::ParameterValue, 'What happens on the master: nodes online/offline, pushes, exec sessions, token, user and certificate changes')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Who pushed, rolled back, ran commands, changed tokens, users and certificates, and with what result (admin)')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print shell completions (bash, zsh, fish, powershell, elvish)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'cdnctl;help;nodes' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List nodes with their state, address, labels and figures')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show everything the master knows about one node')
            break
        }
        'cdnctl;help;nodes;list' {
            break
        }
        'cdnctl;help;nodes;show' {
            break
        }
        'cdnctl;help;config' {
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Store FILE as a new version and apply it on the target nodes')
            [CompletionResult]::new('rollback', 'rollback', [CompletionResultType]::ParameterValue, 'Make an earlier version desired again and apply it (same progress)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Per node: desired and applied version, in sync or not, drift, last error')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Stored versions, newest first')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the content of a version')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Unified diff between two versions')
            break
        }
        'cdnctl;help;config;push' {
            break
        }
        'cdnctl;help;config;rollback' {
            break
        }
        'cdnctl;help;config;status' {
            break
        }
        'cdnctl;help;config;history' {
            break
        }
        'cdnctl;help;config;show' {
            break
        }
        'cdnctl;help;config;diff' {
            break
        }
        'cdnctl;help;exec' {
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Sessions run through the master, newest first (the audit log)')
            break
        }
        'cdnctl;help;exec;history' {
            break
        }
        'cdnctl;help;context' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List contexts; `*` marks the current one')
            [CompletionResult]::new('use', 'use', [CompletionResultType]::ParameterValue, 'Make NAME the current context')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a context from the credential file given with --credential (`masterd` wrote `admin.credential` in its data directory; `masterd user add` writes others); --master replaces the address in it. The credential is copied into the config file. With --insecure and --master instead: a context for a master started --insecure')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a context')
            break
        }
        'cdnctl;help;context;list' {
            break
        }
        'cdnctl;help;context;use' {
            break
        }
        'cdnctl;help;context;add' {
            break
        }
        'cdnctl;help;context;remove' {
            break
        }
        'cdnctl;help;whoami' {
            break
        }
        'cdnctl;help;events' {
            break
        }
        'cdnctl;help;audit' {
            break
        }
        'cdnctl;help;completion' {
            break
        }
        'cdnctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
