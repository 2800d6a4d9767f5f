# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dpx_global_optspecs
    string join \n config= cache-dir= json q/quiet v/verbose h/help V/version
end

function __fish_dpx_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dpx_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dpx_using_subcommand
    set -l cmd (__fish_dpx_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dpx -n "__fish_dpx_needs_command" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_needs_command" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_needs_command" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_needs_command" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_needs_command" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dpx -n "__fish_dpx_needs_command" -s V -l version -d 'Print version'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "pull" -d 'Fetch images (manifest, config, layers) into the cache'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "prefetch" -d 'Warm the cache for many images at once'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "serve" -d 'Run the localhost registry mirror, with a status page for browsers at /'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "purge" -d 'Remove images and content from the cache to free disk space'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "cache" -d 'Look after the cache: list its images, show its disk use, check it, find it'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "export" -d 'Write cached images to an OCI image layout archive (tar), without the network'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "import" -d 'Verify an OCI image layout archive and add its images to the cache'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "ratelimit" -d 'Show the Docker Hub pull quota left, without spending a pull (--cached: the last figures seen, no network)'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "stats" -d 'Manifest requests answered from the cache, and manifest GETs/HEADs sent upstream'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "daemon" -d 'Run the mirror in the background for this cache: start, stop, status, logs, ensure'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "login" -d 'Log in to an upstream registry: check the credentials with it, then store them'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "logout" -d 'Remove a registry\'s credentials from dpx\'s store'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "setup" -d 'Point docker, containerd or podman at the dpx mirror'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "env" -d 'Print the variables a shell or CI job needs to pull through dpx'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "doctor" -d 'Check why pulls might not go through the cache, and say how to fix it'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "config" -d 'Show the effective configuration and where it comes from'
complete -c dpx -n "__fish_dpx_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand pull" -l platform -d 'Platform to take from a multi-arch image, os/arch[/variant] [default: this machine\'s]' -r
complete -c dpx -n "__fish_dpx_using_subcommand pull" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand pull" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand pull" -l all-platforms -d 'Take every platform of a multi-arch image'
complete -c dpx -n "__fish_dpx_using_subcommand pull" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand pull" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand pull" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand pull" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -s f -l file -d 'File with one image reference per line (`#` starts a comment)' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -l from -d 'Read images from a Dockerfile, compose file, .gitlab-ci.yml or GitHub workflow, or from the files with those usual names in a directory (repeatable)' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -s j -l jobs -d 'Images fetched at the same time' -r
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -l max-pulls -d 'Send at most N manifest GETs upstream (each is a pull on Docker Hub); stop with exit code 3 before the next one' -r
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -l platform -d 'Platform to take from a multi-arch image, os/arch[/variant] [default: this machine\'s]' -r
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -s n -l dry-run -d 'List the images found, and where, without fetching anything'
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -l all-platforms -d 'Take every platform of a multi-arch image'
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand prefetch" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l listen -d 'Address to listen on [default: 127.0.0.1:5000, or [serve] listen]' -r
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l idle-timeout -d 'Stop after this long without a request, e.g. 30m; 0 never [default: [serve] idle_timeout, else never]' -r
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l tls-cert -d 'PEM certificate chain: serve HTTPS [or [serve] tls_cert]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l tls-key -d 'PEM private key of --tls-cert [or [serve] tls_key]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l daemon -d 'Run as this cache\'s daemon (what `dpx daemon start` runs)'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l auth -d 'Clients must log in (docker login) as a dpx user [or [serve.auth] enabled = true]'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l insecure-no-auth -d 'Listen off loopback without client auth: anyone who reaches the port reads every cached image'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l print-password -d 'Print the password of the dpx user `dpx` (generated the first time) and exit'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l reset-password -d 'Replace the password of the dpx user `dpx` with a new one, print it and exit'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l hash-password -d 'Read a password on stdin, print its hash for [serve.auth.users] and exit'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand serve" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand purge" -l older-than -d 'Remove tags, manifests and blobs not used for this long, e.g. 30d' -r
complete -c dpx -n "__fish_dpx_using_subcommand purge" -l max-size -d 'Remove the least recently used content until the cache fits, e.g. 20GiB' -r
complete -c dpx -n "__fish_dpx_using_subcommand purge" -l image -d 'Forget an image (repository, :tag or @digest), keeping blobs other images need (repeatable)' -r
complete -c dpx -n "__fish_dpx_using_subcommand purge" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand purge" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand purge" -l unreferenced -d 'Remove blobs and manifests no kept tag reaches (once 10 minutes old, so an unfinished pull keeps its content), and leftover temp and lock files'
complete -c dpx -n "__fish_dpx_using_subcommand purge" -l all -d 'Remove everything'
complete -c dpx -n "__fish_dpx_using_subcommand purge" -s y -l yes -d 'Do not ask before --all'
complete -c dpx -n "__fish_dpx_using_subcommand purge" -s n -l dry-run -d 'List what would be removed and the bytes reclaimed; change nothing'
complete -c dpx -n "__fish_dpx_using_subcommand purge" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand purge" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand purge" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand purge" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -f -a "ls" -d 'List the images in the cache'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -f -a "du" -d 'Disk usage: total, by registry, by repository (shared blobs counted once)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -f -a "verify" -d 'Re-hash every blob and manifest; remove what does not match its digest'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -f -a "path" -d 'Print the cache directory'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and not __fish_seen_subcommand_from ls du verify path help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from ls" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from ls" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from ls" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from du" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from du" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from du" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from du" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from du" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from du" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from verify" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from verify" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from verify" -l keep -d 'Only report problems; remove nothing'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from verify" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from verify" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from verify" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from path" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from path" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from path" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from path" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from path" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from path" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List the images in the cache'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "du" -d 'Disk usage: total, by registry, by repository (shared blobs counted once)'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Re-hash every blob and manifest; remove what does not match its digest'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "path" -d 'Print the cache directory'
complete -c dpx -n "__fish_dpx_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand export" -s o -l output -d 'Archive to write (`-` for stdout)' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand export" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand export" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand export" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand export" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand export" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand export" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand import" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand import" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand import" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand import" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand import" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand import" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand ratelimit" -l min-remaining -d 'Exit with status 4 when fewer than N pulls remain (a CI job can stop before it pulls)' -r
complete -c dpx -n "__fish_dpx_using_subcommand ratelimit" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand ratelimit" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand ratelimit" -l cached -d 'Show the last figures seen on any upstream reply (by registry and identity, with the time seen), without any network request'
complete -c dpx -n "__fish_dpx_using_subcommand ratelimit" -l anonymous -d 'Ask anonymously even when credentials are stored (the quota of this IP address)'
complete -c dpx -n "__fish_dpx_using_subcommand ratelimit" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand ratelimit" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand ratelimit" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand ratelimit" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand stats" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand stats" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand stats" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand stats" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand stats" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand stats" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -f -a "start" -d 'Start the daemon in the background; returns once it answers, printing its address'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -f -a "stop" -d 'Stop the daemon: in-flight requests finish first (SIGTERM, SIGKILL after 20s)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -f -a "status" -d 'Address, status page, pid, uptime, cache size, requests served, hits and misses (exit 1 if not running)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -f -a "logs" -d 'Print the daemon\'s log'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -f -a "ensure" -d 'Start the daemon unless it runs, then print its address (for scripts)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and not __fish_seen_subcommand_from start stop status logs ensure help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from start" -l listen -d 'Address to listen on when starting [default: 127.0.0.1:5000, or [serve] listen]' -r
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from start" -l idle-timeout -d 'Stop after this long without a request; 0 never [default: [serve] idle_timeout, else 30m]' -r
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from start" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from start" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from start" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from start" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from start" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from stop" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from stop" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from stop" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from stop" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from stop" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from status" -l listen -d 'Address to listen on when starting [default: 127.0.0.1:5000, or [serve] listen]' -r
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from status" -l idle-timeout -d 'Stop after this long without a request; 0 never [default: [serve] idle_timeout, else 30m]' -r
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from status" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from status" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from status" -l ensure -d 'Start the daemon first if it is not running'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from status" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from status" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from logs" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from logs" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from logs" -s f -l follow -d 'Keep printing new lines as they are written (until Ctrl-C)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from logs" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from logs" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from logs" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from logs" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from ensure" -l listen -d 'Address to listen on when starting [default: 127.0.0.1:5000, or [serve] listen]' -r
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from ensure" -l idle-timeout -d 'Stop after this long without a request; 0 never [default: [serve] idle_timeout, else 30m]' -r
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from ensure" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from ensure" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from ensure" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from ensure" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from ensure" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from ensure" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "start" -d 'Start the daemon in the background; returns once it answers, printing its address'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Stop the daemon: in-flight requests finish first (SIGTERM, SIGKILL after 20s)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "status" -d 'Address, status page, pid, uptime, cache size, requests served, hits and misses (exit 1 if not running)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "logs" -d 'Print the daemon\'s log'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "ensure" -d 'Start the daemon unless it runs, then print its address (for scripts)'
complete -c dpx -n "__fish_dpx_using_subcommand daemon; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand login" -s u -l username -d 'Username [default: asked for]' -r
complete -c dpx -n "__fish_dpx_using_subcommand login" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand login" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand login" -l password-stdin -d 'Read the password or access token from stdin (for scripts; needs --username)'
complete -c dpx -n "__fish_dpx_using_subcommand login" -l list -d 'List the credentials dpx would use (registry, username, source; never a secret)'
complete -c dpx -n "__fish_dpx_using_subcommand login" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand login" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand login" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand login" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand logout" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand logout" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand logout" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand logout" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand logout" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand logout" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand completions" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand completions" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand completions" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand completions" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand completions" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand completions" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand man" -l dir -d 'Write every man page (dpx.1, dpx-pull.1, ...) into this directory' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand man" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand man" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand man" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand man" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand man" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand man" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -f -a "docker" -d 'Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -f -a "containerd" -d 'Print (or --apply: write) containerd hosts.toml files for docker.io and each configured registry, and the CRI\'s config_path in containerd\'s config.toml'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -f -a "podman" -d 'Print the registries.conf mirror stanzas for podman, buildah and CRI-O'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -f -a "systemd" -d 'Print (or --apply: install) a systemd .socket + .service pair: the first connection to the port starts dpx, which stops again when idle'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and not __fish_seen_subcommand_from docker containerd podman systemd help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from docker" -l file -d 'The Docker daemon\'s configuration file' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from docker" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from docker" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from docker" -l apply -d 'Merge the mirror into the file (keeping every other key, with a backup)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from docker" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from docker" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from docker" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from docker" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from containerd" -l hosts-dir -d 'containerd\'s registry hosts directory (its `config_path`)' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from containerd" -l containerd-config -d 'containerd\'s configuration file, whose CRI `config_path` --apply sets to --hosts-dir' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from containerd" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from containerd" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from containerd" -l apply -d 'Write the files (with a backup of each changed one) instead of printing them'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from containerd" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from containerd" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from containerd" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from containerd" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from podman" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from podman" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from podman" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from podman" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from podman" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from podman" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -l unit-dir -d 'Where --apply writes the units [default: the scope\'s unit directory]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -l listen -d 'Address the socket listens on [default: 127.0.0.1:5000, or [serve] listen]' -r
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -l idle-timeout -d 'The service stops after this long without a request [default: [serve] idle_timeout, else 30m]' -r
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -l user -d 'Units for the user\'s own systemd (~/.config/systemd/user) [default]'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -l system -d 'Units for the system\'s systemd (/etc/systemd/system), run as root'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -l apply -d 'Write the unit files instead of printing them'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from systemd" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from help" -f -a "docker" -d 'Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from help" -f -a "containerd" -d 'Print (or --apply: write) containerd hosts.toml files for docker.io and each configured registry, and the CRI\'s config_path in containerd\'s config.toml'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from help" -f -a "podman" -d 'Print the registries.conf mirror stanzas for podman, buildah and CRI-O'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from help" -f -a "systemd" -d 'Print (or --apply: install) a systemd .socket + .service pair: the first connection to the port starts dpx, which stops again when idle'
complete -c dpx -n "__fish_dpx_using_subcommand setup; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand env" -l format -d 'Output format' -r -f -a "sh\t'`export NAME=\'value\'` for sh, bash and zsh (`eval "$(dpx env)"`)'
fish\t'`set -gx NAME \'value\'` (`dpx env --format fish | source`)'
json\t'One JSON object'
github\t'`NAME=value` lines for `$GITHUB_ENV`'
gitlab\t'`NAME=value` lines for a GitLab dotenv report'"
complete -c dpx -n "__fish_dpx_using_subcommand env" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand env" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand env" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand env" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand env" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand env" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dpx -n "__fish_dpx_using_subcommand doctor" -l hosts-dir -d 'containerd\'s registry hosts directory to check' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand doctor" -l containerd-config -d 'containerd\'s configuration file, whose CRI `config_path` must name --hosts-dir' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand doctor" -l registries-conf -d 'podman\'s registries.conf to check [default: $CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/registries.conf, else /etc/containers/registries.conf]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand doctor" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand doctor" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand doctor" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand doctor" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand doctor" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -f -a "show" -d 'Every setting\'s effective value and where it came from (default, file, env, flag)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -f -a "path" -d 'Print the config file\'s path'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -f -a "set" -d 'Set a key in the config file (created if missing); the file is changed only when the result loads, keeping its comments and order'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -f -a "unset" -d 'Remove a key from the config file: its default applies again'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -f -a "edit" -d 'Open the config file in $VISUAL or $EDITOR; the edit is kept only when it loads'
complete -c dpx -n "__fish_dpx_using_subcommand config; and not __fish_seen_subcommand_from show path set unset edit help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from show" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from show" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from path" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from path" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from path" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from path" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from path" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from path" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from set" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from set" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from set" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from set" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from set" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from unset" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from unset" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from unset" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from unset" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from unset" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from unset" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from edit" -l config -d 'Config file (TOML) [default: the platform\'s config dir, dpx/config.toml]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from edit" -l cache-dir -d 'Cache directory [default: the platform\'s cache dir, e.g. ~/.cache/dpx]' -r -F
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from edit" -l json -d 'Machine-readable JSON output on stdout'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from edit" -s q -l quiet -d 'Print only errors (and the result digests)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from edit" -s v -l verbose -d 'More log output (repeat for more)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from edit" -s h -l help -d 'Print help'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Every setting\'s effective value and where it came from (default, file, env, flag)'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "path" -d 'Print the config file\'s path'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "set" -d 'Set a key in the config file (created if missing); the file is changed only when the result loads, keeping its comments and order'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "unset" -d 'Remove a key from the config file: its default applies again'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "edit" -d 'Open the config file in $VISUAL or $EDITOR; the edit is kept only when it loads'
complete -c dpx -n "__fish_dpx_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "pull" -d 'Fetch images (manifest, config, layers) into the cache'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "prefetch" -d 'Warm the cache for many images at once'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "serve" -d 'Run the localhost registry mirror, with a status page for browsers at /'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "purge" -d 'Remove images and content from the cache to free disk space'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "cache" -d 'Look after the cache: list its images, show its disk use, check it, find it'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "export" -d 'Write cached images to an OCI image layout archive (tar), without the network'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "import" -d 'Verify an OCI image layout archive and add its images to the cache'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "ratelimit" -d 'Show the Docker Hub pull quota left, without spending a pull (--cached: the last figures seen, no network)'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "stats" -d 'Manifest requests answered from the cache, and manifest GETs/HEADs sent upstream'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "daemon" -d 'Run the mirror in the background for this cache: start, stop, status, logs, ensure'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "login" -d 'Log in to an upstream registry: check the credentials with it, then store them'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "logout" -d 'Remove a registry\'s credentials from dpx\'s store'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "completions" -d 'Print shell completions'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "man" -d 'Print the man page (roff)'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "setup" -d 'Point docker, containerd or podman at the dpx mirror'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "env" -d 'Print the variables a shell or CI job needs to pull through dpx'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "doctor" -d 'Check why pulls might not go through the cache, and say how to fix it'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "config" -d 'Show the effective configuration and where it comes from'
complete -c dpx -n "__fish_dpx_using_subcommand help; and not __fish_seen_subcommand_from pull prefetch serve purge cache export import ratelimit stats daemon login logout completions man setup env doctor config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "ls" -d 'List the images in the cache'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "du" -d 'Disk usage: total, by registry, by repository (shared blobs counted once)'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "verify" -d 'Re-hash every blob and manifest; remove what does not match its digest'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "path" -d 'Print the cache directory'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "start" -d 'Start the daemon in the background; returns once it answers, printing its address'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "stop" -d 'Stop the daemon: in-flight requests finish first (SIGTERM, SIGKILL after 20s)'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "status" -d 'Address, status page, pid, uptime, cache size, requests served, hits and misses (exit 1 if not running)'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "logs" -d 'Print the daemon\'s log'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from daemon" -f -a "ensure" -d 'Start the daemon unless it runs, then print its address (for scripts)'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from setup" -f -a "docker" -d 'Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from setup" -f -a "containerd" -d 'Print (or --apply: write) containerd hosts.toml files for docker.io and each configured registry, and the CRI\'s config_path in containerd\'s config.toml'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from setup" -f -a "podman" -d 'Print the registries.conf mirror stanzas for podman, buildah and CRI-O'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from setup" -f -a "systemd" -d 'Print (or --apply: install) a systemd .socket + .service pair: the first connection to the port starts dpx, which stops again when idle'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Every setting\'s effective value and where it came from (default, file, env, flag)'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "path" -d 'Print the config file\'s path'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "set" -d 'Set a key in the config file (created if missing); the file is changed only when the result loads, keeping its comments and order'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "unset" -d 'Remove a key from the config file: its default applies again'
complete -c dpx -n "__fish_dpx_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "edit" -d 'Open the config file in $VISUAL or $EDITOR; the edit is kept only when it loads'
