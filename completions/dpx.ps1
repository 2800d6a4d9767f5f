
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dpx' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dpx'
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
        'dpx' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Fetch images (manifest, config, layers) into the cache')
            [CompletionResult]::new('prefetch', 'prefetch', [CompletionResultType]::ParameterValue, 'Warm the cache for many images at once')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the localhost registry mirror')
            [CompletionResult]::new('purge', 'purge', [CompletionResultType]::ParameterValue, 'Remove images and content from the cache to free disk space')
            [CompletionResult]::new('cache', 'cache', [CompletionResultType]::ParameterValue, 'Look after the cache: list its images, show its disk use, check it, find it')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write cached images to an OCI image layout archive (tar), without the network')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Verify an OCI image layout archive and add its images to the cache')
            [CompletionResult]::new('ratelimit', 'ratelimit', [CompletionResultType]::ParameterValue, 'Show the Docker Hub pull quota left, without spending a pull')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('setup', 'setup', [CompletionResultType]::ParameterValue, 'Point docker, containerd or podman at the dpx mirror')
            [CompletionResult]::new('env', 'env', [CompletionResultType]::ParameterValue, 'Print the variables a shell or CI job needs to pull through dpx')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check why pulls might not go through the cache, and say how to fix it')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Show the effective configuration and where it comes from')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dpx;pull' {
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Platform to take from a multi-arch image, os/arch[/variant] [default: this machine''s]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--all-platforms', '--all-platforms', [CompletionResultType]::ParameterName, 'Take every platform of a multi-arch image')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;prefetch' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'File with one image reference per line (`#` starts a comment)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'File with one image reference per line (`#` starts a comment)')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Read images from a Dockerfile, compose file, .gitlab-ci.yml or GitHub workflow, or from the files with those usual names in a directory (repeatable)')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Images fetched at the same time')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Images fetched at the same time')
            [CompletionResult]::new('--platform', '--platform', [CompletionResultType]::ParameterName, 'Platform to take from a multi-arch image, os/arch[/variant] [default: this machine''s]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'List the images found, and where, without fetching anything')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List the images found, and where, without fetching anything')
            [CompletionResult]::new('--all-platforms', '--all-platforms', [CompletionResultType]::ParameterName, 'Take every platform of a multi-arch image')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on [default: 127.0.0.1:5000, or [serve] listen]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;purge' {
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Remove tags, manifests and blobs not used for this long, e.g. 30d')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Remove the least recently used content until the cache fits, e.g. 20GiB')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'Forget an image (repository, :tag or @digest), keeping blobs other images need (repeatable)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--unreferenced', '--unreferenced', [CompletionResultType]::ParameterName, 'Remove blobs and manifests no kept tag reaches (once 10 minutes old, so an unfinished pull keeps its content), and leftover temp and lock files')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Remove everything')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask before --all')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask before --all')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'List what would be removed and the bytes reclaimed; change nothing')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List what would be removed and the bytes reclaimed; change nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;cache' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the images in the cache')
            [CompletionResult]::new('du', 'du', [CompletionResultType]::ParameterValue, 'Disk usage: total, by registry, by repository (shared blobs counted once)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-hash every blob and manifest; remove what does not match its digest')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print the cache directory')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dpx;cache;ls' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;cache;du' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;cache;verify' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Only report problems; remove nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;cache;path' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;cache;help' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the images in the cache')
            [CompletionResult]::new('du', 'du', [CompletionResultType]::ParameterValue, 'Disk usage: total, by registry, by repository (shared blobs counted once)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-hash every blob and manifest; remove what does not match its digest')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print the cache directory')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dpx;cache;help;ls' {
            break
        }
        'dpx;cache;help;du' {
            break
        }
        'dpx;cache;help;verify' {
            break
        }
        'dpx;cache;help;path' {
            break
        }
        'dpx;cache;help;help' {
            break
        }
        'dpx;export' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Archive to write (`-` for stdout)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Archive to write (`-` for stdout)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;import' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;ratelimit' {
            [CompletionResult]::new('--min-remaining', '--min-remaining', [CompletionResultType]::ParameterName, 'Exit with status 4 when fewer than N pulls remain (a CI job can stop before it pulls)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--anonymous', '--anonymous', [CompletionResultType]::ParameterName, 'Ask anonymously even when credentials are stored (the quota of this IP address)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;completions' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;man' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Write every man page (dpx.1, dpx-pull.1, ...) into this directory')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;setup' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('docker', 'docker', [CompletionResultType]::ParameterValue, 'Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json')
            [CompletionResult]::new('containerd', 'containerd', [CompletionResultType]::ParameterValue, 'Write containerd hosts.toml files for docker.io and each configured registry')
            [CompletionResult]::new('podman', 'podman', [CompletionResultType]::ParameterValue, 'Print the registries.conf mirror stanzas for podman, buildah and CRI-O')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dpx;setup;docker' {
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The Docker daemon''s configuration file')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--apply', '--apply', [CompletionResultType]::ParameterName, 'Merge the mirror into the file (keeping every other key, with a backup)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;setup;containerd' {
            [CompletionResult]::new('--hosts-dir', '--hosts-dir', [CompletionResultType]::ParameterName, 'containerd''s registry hosts directory (its `config_path`)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;setup;podman' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;setup;help' {
            [CompletionResult]::new('docker', 'docker', [CompletionResultType]::ParameterValue, 'Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json')
            [CompletionResult]::new('containerd', 'containerd', [CompletionResultType]::ParameterValue, 'Write containerd hosts.toml files for docker.io and each configured registry')
            [CompletionResult]::new('podman', 'podman', [CompletionResultType]::ParameterValue, 'Print the registries.conf mirror stanzas for podman, buildah and CRI-O')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dpx;setup;help;docker' {
            break
        }
        'dpx;setup;help;containerd' {
            break
        }
        'dpx;setup;help;podman' {
            break
        }
        'dpx;setup;help;help' {
            break
        }
        'dpx;env' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dpx;doctor' {
            [CompletionResult]::new('--hosts-dir', '--hosts-dir', [CompletionResultType]::ParameterName, 'containerd''s registry hosts directory to check')
            [CompletionResult]::new('--registries-conf', '--registries-conf', [CompletionResultType]::ParameterName, 'podman''s registries.conf to check [default: $CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/registries.conf, else /etc/containers/registries.conf]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;config' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Every setting''s effective value and where it came from (default, file, env, flag)')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print the config file''s path')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dpx;config;show' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;config;path' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (TOML) [default: the platform''s config dir, dpx/config.toml]')
            [CompletionResult]::new('--cache-dir', '--cache-dir', [CompletionResultType]::ParameterName, 'Cache directory [default: the platform''s cache dir, e.g. ~/.cache/dpx]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable JSON output on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only errors (and the result digests)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (repeat for more)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'dpx;config;help' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Every setting''s effective value and where it came from (default, file, env, flag)')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print the config file''s path')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dpx;config;help;show' {
            break
        }
        'dpx;config;help;path' {
            break
        }
        'dpx;config;help;help' {
            break
        }
        'dpx;help' {
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Fetch images (manifest, config, layers) into the cache')
            [CompletionResult]::new('prefetch', 'prefetch', [CompletionResultType]::ParameterValue, 'Warm the cache for many images at once')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the localhost registry mirror')
            [CompletionResult]::new('purge', 'purge', [CompletionResultType]::ParameterValue, 'Remove images and content from the cache to free disk space')
            [CompletionResult]::new('cache', 'cache', [CompletionResultType]::ParameterValue, 'Look after the cache: list its images, show its disk use, check it, find it')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write cached images to an OCI image layout archive (tar), without the network')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Verify an OCI image layout archive and add its images to the cache')
            [CompletionResult]::new('ratelimit', 'ratelimit', [CompletionResultType]::ParameterValue, 'Show the Docker Hub pull quota left, without spending a pull')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('setup', 'setup', [CompletionResultType]::ParameterValue, 'Point docker, containerd or podman at the dpx mirror')
            [CompletionResult]::new('env', 'env', [CompletionResultType]::ParameterValue, 'Print the variables a shell or CI job needs to pull through dpx')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check why pulls might not go through the cache, and say how to fix it')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Show the effective configuration and where it comes from')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dpx;help;pull' {
            break
        }
        'dpx;help;prefetch' {
            break
        }
        'dpx;help;serve' {
            break
        }
        'dpx;help;purge' {
            break
        }
        'dpx;help;cache' {
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the images in the cache')
            [CompletionResult]::new('du', 'du', [CompletionResultType]::ParameterValue, 'Disk usage: total, by registry, by repository (shared blobs counted once)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-hash every blob and manifest; remove what does not match its digest')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print the cache directory')
            break
        }
        'dpx;help;cache;ls' {
            break
        }
        'dpx;help;cache;du' {
            break
        }
        'dpx;help;cache;verify' {
            break
        }
        'dpx;help;cache;path' {
            break
        }
        'dpx;help;export' {
            break
        }
        'dpx;help;import' {
            break
        }
        'dpx;help;ratelimit' {
            break
        }
        'dpx;help;completions' {
            break
        }
        'dpx;help;man' {
            break
        }
        'dpx;help;setup' {
            [CompletionResult]::new('docker', 'docker', [CompletionResultType]::ParameterValue, 'Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json')
            [CompletionResult]::new('containerd', 'containerd', [CompletionResultType]::ParameterValue, 'Write containerd hosts.toml files for docker.io and each configured registry')
            [CompletionResult]::new('podman', 'podman', [CompletionResultType]::ParameterValue, 'Print the registries.conf mirror stanzas for podman, buildah and CRI-O')
            break
        }
        'dpx;help;setup;docker' {
            break
        }
        'dpx;help;setup;containerd' {
            break
        }
        'dpx;help;setup;podman' {
            break
        }
        'dpx;help;env' {
            break
        }
        'dpx;help;doctor' {
            break
        }
        'dpx;help;config' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Every setting''s effective value and where it came from (default, file, env, flag)')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print the config file''s path')
            break
        }
        'dpx;help;config;show' {
            break
        }
        'dpx;help;config;path' {
            break
        }
        'dpx;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
