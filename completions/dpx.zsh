#compdef dpx

autoload -U is-at-least

_dpx() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_dpx_commands" \
"*::: :->dpx" \
&& ret=0
    case $state in
    (dpx)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-command-$line[1]:"
        case $line[1] in
            (pull)
_arguments "${_arguments_options[@]}" : \
'(--all-platforms)--platform=[Platform to take from a multi-arch image, os/arch\[/variant\] \[default\: this machine'\''s\]]:OS/ARCH[/VARIANT]:_default' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--all-platforms[Take every platform of a multi-arch image]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
'*::images -- Image references, e.g. alpine, user/app\:1, ghcr.io/org/app@sha256\:...:_default' \
&& ret=0
;;
(prefetch)
_arguments "${_arguments_options[@]}" : \
'*-f+[File with one image reference per line (\`#\` starts a comment)]:FILE:_files' \
'*--file=[File with one image reference per line (\`#\` starts a comment)]:FILE:_files' \
'*--from=[Read images from a Dockerfile, compose file, .gitlab-ci.yml or GitHub workflow, or from the files with those usual names in a directory (repeatable)]:PATH:_files' \
'-j+[Images fetched at the same time]:JOBS:_default' \
'--jobs=[Images fetched at the same time]:JOBS:_default' \
'--max-pulls=[Send at most N manifest GETs upstream (each is a pull on Docker Hub); stop with exit code 3 before the next one]:N:_default' \
'(--all-platforms)--platform=[Platform to take from a multi-arch image, os/arch\[/variant\] \[default\: this machine'\''s\]]:OS/ARCH[/VARIANT]:_default' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'-n[List the images found, and where, without fetching anything]' \
'--dry-run[List the images found, and where, without fetching anything]' \
'--all-platforms[Take every platform of a multi-arch image]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
'*::images -- Image references:_default' \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
'--listen=[Address to listen on \[default\: 127.0.0.1\:5000, or \[serve\] listen\]]:ADDR:_default' \
'--idle-timeout=[Stop after this long without a request, e.g. 30m; 0 never \[default\: \[serve\] idle_timeout, else never\]]:DURATION:_default' \
'--tls-cert=[PEM certificate chain\: serve HTTPS \[or \[serve\] tls_cert\]]:FILE:_files' \
'--tls-key=[PEM private key of --tls-cert \[or \[serve\] tls_key\]]:FILE:_files' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--daemon[Run as this cache'\''s daemon (what \`dpx daemon start\` runs)]' \
'--auth[Clients must log in (docker login) as a dpx user \[or \[serve.auth\] enabled = true\]]' \
'(--auth)--insecure-no-auth[Listen off loopback without client auth\: anyone who reaches the port reads every cached image]' \
'--print-password[Print the password of the dpx user \`dpx\` (generated the first time) and exit]' \
'--reset-password[Replace the password of the dpx user \`dpx\` with a new one, print it and exit]' \
'--hash-password[Read a password on stdin, print its hash for \[serve.auth.users\] and exit]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(purge)
_arguments "${_arguments_options[@]}" : \
'--older-than=[Remove tags, manifests and blobs not used for this long, e.g. 30d]:AGE:_default' \
'--max-size=[Remove the least recently used content until the cache fits, e.g. 20GiB]:SIZE:_default' \
'*--image=[Forget an image (repository, \:tag or @digest), keeping blobs other images need (repeatable)]:IMAGE:_default' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--unreferenced[Remove blobs and manifests no kept tag reaches (once 10 minutes old, so an unfinished pull keeps its content), and leftover temp and lock files]' \
'--all[Remove everything]' \
'-y[Do not ask before --all]' \
'--yes[Do not ask before --all]' \
'-n[List what would be removed and the bytes reclaimed; change nothing]' \
'--dry-run[List what would be removed and the bytes reclaimed; change nothing]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(cache)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_dpx__subcmd__cache_commands" \
"*::: :->cache" \
&& ret=0

    case $state in
    (cache)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-cache-command-$line[1]:"
        case $line[1] in
            (ls)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(du)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(verify)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--keep[Only report problems; remove nothing]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(path)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_dpx__subcmd__cache__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-cache-help-command-$line[1]:"
        case $line[1] in
            (ls)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(du)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(verify)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(path)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(export)
_arguments "${_arguments_options[@]}" : \
'-o+[Archive to write (\`-\` for stdout)]:FILE.tar:_files' \
'--output=[Archive to write (\`-\` for stdout)]:FILE.tar:_files' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
'*::images -- Cached image references, e.g. alpine\:3.20, ghcr.io/org/app@sha256\:...:_default' \
&& ret=0
;;
(import)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
':archive -- OCI image layout archive, e.g. from `dpx export` or `skopeo copy ... oci-archive\:FILE.tar`:_files' \
&& ret=0
;;
(ratelimit)
_arguments "${_arguments_options[@]}" : \
'--min-remaining=[Exit with status 4 when fewer than N pulls remain (a CI job can stop before it pulls)]:N:_default' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--cached[Show the last figures seen on any upstream reply (by registry and identity, with the time seen), without any network request]' \
'--anonymous[Ask anonymously even when credentials are stored (the quota of this IP address)]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(stats)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(daemon)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_dpx__subcmd__daemon_commands" \
"*::: :->daemon" \
&& ret=0

    case $state in
    (daemon)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-daemon-command-$line[1]:"
        case $line[1] in
            (start)
_arguments "${_arguments_options[@]}" : \
'--listen=[Address to listen on when starting \[default\: 127.0.0.1\:5000, or \[serve\] listen\]]:ADDR:_default' \
'--idle-timeout=[Stop after this long without a request; 0 never \[default\: \[serve\] idle_timeout, else 30m\]]:DURATION:_default' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(stop)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
'--listen=[Address to listen on when starting \[default\: 127.0.0.1\:5000, or \[serve\] listen\]]:ADDR:_default' \
'--idle-timeout=[Stop after this long without a request; 0 never \[default\: \[serve\] idle_timeout, else 30m\]]:DURATION:_default' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--ensure[Start the daemon first if it is not running]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(logs)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'-f[Keep printing new lines as they are written (until Ctrl-C)]' \
'--follow[Keep printing new lines as they are written (until Ctrl-C)]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(ensure)
_arguments "${_arguments_options[@]}" : \
'--listen=[Address to listen on when starting \[default\: 127.0.0.1\:5000, or \[serve\] listen\]]:ADDR:_default' \
'--idle-timeout=[Stop after this long without a request; 0 never \[default\: \[serve\] idle_timeout, else 30m\]]:DURATION:_default' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_dpx__subcmd__daemon__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-daemon-help-command-$line[1]:"
        case $line[1] in
            (start)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(stop)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(logs)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(ensure)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(login)
_arguments "${_arguments_options[@]}" : \
'(--list)-u+[Username \[default\: asked for\]]:USERNAME:_default' \
'(--list)--username=[Username \[default\: asked for\]]:USERNAME:_default' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'(--list)--password-stdin[Read the password or access token from stdin (for scripts; needs --username)]' \
'()--list[List the credentials dpx would use (registry, username, source; never a secret)]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
'::registry -- Registry host, e.g. ghcr.io or 127.0.0.1\:5000; docker.io is Docker Hub itself \[default\: where docker.io pulls go first\: the host of \[registries."docker.io"\] url when set, else Docker Hub\]:_default' \
&& ret=0
;;
(logout)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
'::registry -- Registry host \[default\: as for dpx login\: the host of \[registries."docker.io"\] url when set, else Docker Hub\]:_default' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
':shell -- bash, zsh, fish, elvish or powershell:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
'--dir=[Write every man page (dpx.1, dpx-pull.1, ...) into this directory]:DIR:_files' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(setup)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_dpx__subcmd__setup_commands" \
"*::: :->setup" \
&& ret=0

    case $state in
    (setup)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-setup-command-$line[1]:"
        case $line[1] in
            (docker)
_arguments "${_arguments_options[@]}" : \
'--file=[The Docker daemon'\''s configuration file]:PATH:_files' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--apply[Merge the mirror into the file (keeping every other key, with a backup)]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(containerd)
_arguments "${_arguments_options[@]}" : \
'--hosts-dir=[containerd'\''s registry hosts directory (its \`config_path\`)]:DIR:_files' \
'--containerd-config=[containerd'\''s configuration file, whose CRI \`config_path\` --apply sets to --hosts-dir]:FILE:_files' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--apply[Write the files (with a backup of each changed one) instead of printing them]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(podman)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(systemd)
_arguments "${_arguments_options[@]}" : \
'--unit-dir=[Where --apply writes the units \[default\: the scope'\''s unit directory\]]:DIR:_files' \
'--listen=[Address the socket listens on \[default\: 127.0.0.1\:5000, or \[serve\] listen\]]:ADDR:_default' \
'--idle-timeout=[The service stops after this long without a request \[default\: \[serve\] idle_timeout, else 30m\]]:DURATION:_default' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'(--system)--user[Units for the user'\''s own systemd (~/.config/systemd/user) \[default\]]' \
'--system[Units for the system'\''s systemd (/etc/systemd/system), run as root]' \
'--apply[Write the unit files instead of printing them]' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_dpx__subcmd__setup__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-setup-help-command-$line[1]:"
        case $line[1] in
            (docker)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(containerd)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(podman)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(systemd)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(env)
_arguments "${_arguments_options[@]}" : \
'--format=[Output format]:FORMAT:((sh\:"\`export NAME='\''value'\''\` for sh, bash and zsh (\`eval "\$(dpx env)"\`)"
fish\:"\`set -gx NAME '\''value'\''\` (\`dpx env --format fish | source\`)"
json\:"One JSON object"
github\:"\`NAME=value\` lines for \`\$GITHUB_ENV\`"
gitlab\:"\`NAME=value\` lines for a GitLab dotenv report"))' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
&& ret=0
;;
(doctor)
_arguments "${_arguments_options[@]}" : \
'--hosts-dir=[containerd'\''s registry hosts directory to check]:DIR:_files' \
'--containerd-config=[containerd'\''s configuration file, whose CRI \`config_path\` must name --hosts-dir]:FILE:_files' \
'--registries-conf=[podman'\''s registries.conf to check \[default\: \$CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/registries.conf, else /etc/containers/registries.conf\]]:FILE:_files' \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(config)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_dpx__subcmd__config_commands" \
"*::: :->config" \
&& ret=0

    case $state in
    (config)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-config-command-$line[1]:"
        case $line[1] in
            (show)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(path)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(set)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
':key -- A key as `dpx config show` prints it, e.g. cache.tag_ttl or registries."docker.io".url:_default' \
':value -- Its value, e.g. 30m, 20GiB, http\://127.0.0.1\:5001; lists comma-separated:_default' \
&& ret=0
;;
(unset)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
':key -- A key as `dpx config show` prints it:_default' \
&& ret=0
;;
(edit)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file (TOML) \[default\: the platform'\''s config dir, dpx/config.toml\]]:PATH:_files' \
'--cache-dir=[Cache directory \[default\: the platform'\''s cache dir, e.g. ~/.cache/dpx\]]:DIR:_files' \
'--json[Machine-readable JSON output on stdout]' \
'(-v --verbose)-q[Print only errors (and the result digests)]' \
'(-v --verbose)--quiet[Print only errors (and the result digests)]' \
'*-v[More log output (repeat for more)]' \
'*--verbose[More log output (repeat for more)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_dpx__subcmd__config__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-config-help-command-$line[1]:"
        case $line[1] in
            (show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(path)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(set)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(unset)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(edit)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_dpx__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-help-command-$line[1]:"
        case $line[1] in
            (pull)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(prefetch)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(purge)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(cache)
_arguments "${_arguments_options[@]}" : \
":: :_dpx__subcmd__help__subcmd__cache_commands" \
"*::: :->cache" \
&& ret=0

    case $state in
    (cache)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-help-cache-command-$line[1]:"
        case $line[1] in
            (ls)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(du)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(verify)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(path)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(export)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(import)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(ratelimit)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(stats)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(daemon)
_arguments "${_arguments_options[@]}" : \
":: :_dpx__subcmd__help__subcmd__daemon_commands" \
"*::: :->daemon" \
&& ret=0

    case $state in
    (daemon)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-help-daemon-command-$line[1]:"
        case $line[1] in
            (start)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(stop)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(logs)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(ensure)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(login)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(logout)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(setup)
_arguments "${_arguments_options[@]}" : \
":: :_dpx__subcmd__help__subcmd__setup_commands" \
"*::: :->setup" \
&& ret=0

    case $state in
    (setup)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-help-setup-command-$line[1]:"
        case $line[1] in
            (docker)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(containerd)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(podman)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(systemd)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(env)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(doctor)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(config)
_arguments "${_arguments_options[@]}" : \
":: :_dpx__subcmd__help__subcmd__config_commands" \
"*::: :->config" \
&& ret=0

    case $state in
    (config)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:dpx-help-config-command-$line[1]:"
        case $line[1] in
            (show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(path)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(set)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(unset)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(edit)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_dpx_commands] )) ||
_dpx_commands() {
    local commands; commands=(
'pull:Fetch images (manifest, config, layers) into the cache' \
'prefetch:Warm the cache for many images at once' \
'serve:Run the localhost registry mirror, with a status page for browsers at /' \
'purge:Remove images and content from the cache to free disk space' \
'cache:Look after the cache\: list its images, show its disk use, check it, find it' \
'export:Write cached images to an OCI image layout archive (tar), without the network' \
'import:Verify an OCI image layout archive and add its images to the cache' \
'ratelimit:Show the Docker Hub pull quota left, without spending a pull (--cached\: the last figures seen, no network)' \
'stats:Manifest requests answered from the cache, and manifest GETs/HEADs sent upstream' \
'daemon:Run the mirror in the background for this cache\: start, stop, status, logs, ensure' \
'login:Log in to an upstream registry\: check the credentials with it, then store them' \
'logout:Remove a registry'\''s credentials from dpx'\''s store' \
'completions:Print shell completions' \
'man:Print the man page (roff)' \
'setup:Point docker, containerd or podman at the dpx mirror' \
'env:Print the variables a shell or CI job needs to pull through dpx' \
'doctor:Check why pulls might not go through the cache, and say how to fix it' \
'config:Show the effective configuration and where it comes from' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache_commands] )) ||
_dpx__subcmd__cache_commands() {
    local commands; commands=(
'ls:List the images in the cache' \
'du:Disk usage\: total, by registry, by repository (shared blobs counted once)' \
'verify:Re-hash every blob and manifest; remove what does not match its digest' \
'path:Print the cache directory' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx cache commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__du_commands] )) ||
_dpx__subcmd__cache__subcmd__du_commands() {
    local commands; commands=()
    _describe -t commands 'dpx cache du commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__help_commands] )) ||
_dpx__subcmd__cache__subcmd__help_commands() {
    local commands; commands=(
'ls:List the images in the cache' \
'du:Disk usage\: total, by registry, by repository (shared blobs counted once)' \
'verify:Re-hash every blob and manifest; remove what does not match its digest' \
'path:Print the cache directory' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx cache help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__help__subcmd__du_commands] )) ||
_dpx__subcmd__cache__subcmd__help__subcmd__du_commands() {
    local commands; commands=()
    _describe -t commands 'dpx cache help du commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__help__subcmd__help_commands] )) ||
_dpx__subcmd__cache__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'dpx cache help help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__help__subcmd__ls_commands] )) ||
_dpx__subcmd__cache__subcmd__help__subcmd__ls_commands() {
    local commands; commands=()
    _describe -t commands 'dpx cache help ls commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__help__subcmd__path_commands] )) ||
_dpx__subcmd__cache__subcmd__help__subcmd__path_commands() {
    local commands; commands=()
    _describe -t commands 'dpx cache help path commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__help__subcmd__verify_commands] )) ||
_dpx__subcmd__cache__subcmd__help__subcmd__verify_commands() {
    local commands; commands=()
    _describe -t commands 'dpx cache help verify commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__ls_commands] )) ||
_dpx__subcmd__cache__subcmd__ls_commands() {
    local commands; commands=()
    _describe -t commands 'dpx cache ls commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__path_commands] )) ||
_dpx__subcmd__cache__subcmd__path_commands() {
    local commands; commands=()
    _describe -t commands 'dpx cache path commands' commands "$@"
}
(( $+functions[_dpx__subcmd__cache__subcmd__verify_commands] )) ||
_dpx__subcmd__cache__subcmd__verify_commands() {
    local commands; commands=()
    _describe -t commands 'dpx cache verify commands' commands "$@"
}
(( $+functions[_dpx__subcmd__completions_commands] )) ||
_dpx__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'dpx completions commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config_commands] )) ||
_dpx__subcmd__config_commands() {
    local commands; commands=(
'show:Every setting'\''s effective value and where it came from (default, file, env, flag)' \
'path:Print the config file'\''s path' \
'set:Set a key in the config file (created if missing); the file is changed only when the result loads, keeping its comments and order' \
'unset:Remove a key from the config file\: its default applies again' \
'edit:Open the config file in \$VISUAL or \$EDITOR; the edit is kept only when it loads' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx config commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__edit_commands] )) ||
_dpx__subcmd__config__subcmd__edit_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config edit commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__help_commands] )) ||
_dpx__subcmd__config__subcmd__help_commands() {
    local commands; commands=(
'show:Every setting'\''s effective value and where it came from (default, file, env, flag)' \
'path:Print the config file'\''s path' \
'set:Set a key in the config file (created if missing); the file is changed only when the result loads, keeping its comments and order' \
'unset:Remove a key from the config file\: its default applies again' \
'edit:Open the config file in \$VISUAL or \$EDITOR; the edit is kept only when it loads' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx config help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__help__subcmd__edit_commands] )) ||
_dpx__subcmd__config__subcmd__help__subcmd__edit_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config help edit commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__help__subcmd__help_commands] )) ||
_dpx__subcmd__config__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config help help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__help__subcmd__path_commands] )) ||
_dpx__subcmd__config__subcmd__help__subcmd__path_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config help path commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__help__subcmd__set_commands] )) ||
_dpx__subcmd__config__subcmd__help__subcmd__set_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config help set commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__help__subcmd__show_commands] )) ||
_dpx__subcmd__config__subcmd__help__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config help show commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__help__subcmd__unset_commands] )) ||
_dpx__subcmd__config__subcmd__help__subcmd__unset_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config help unset commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__path_commands] )) ||
_dpx__subcmd__config__subcmd__path_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config path commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__set_commands] )) ||
_dpx__subcmd__config__subcmd__set_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config set commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__show_commands] )) ||
_dpx__subcmd__config__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config show commands' commands "$@"
}
(( $+functions[_dpx__subcmd__config__subcmd__unset_commands] )) ||
_dpx__subcmd__config__subcmd__unset_commands() {
    local commands; commands=()
    _describe -t commands 'dpx config unset commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon_commands] )) ||
_dpx__subcmd__daemon_commands() {
    local commands; commands=(
'start:Start the daemon in the background; returns once it answers, printing its address' \
'stop:Stop the daemon\: in-flight requests finish first (SIGTERM, SIGKILL after 20s)' \
'status:Address, status page, pid, uptime, cache size, requests served, hits and misses (exit 1 if not running)' \
'logs:Print the daemon'\''s log' \
'ensure:Start the daemon unless it runs, then print its address (for scripts)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx daemon commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__ensure_commands] )) ||
_dpx__subcmd__daemon__subcmd__ensure_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon ensure commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__help_commands] )) ||
_dpx__subcmd__daemon__subcmd__help_commands() {
    local commands; commands=(
'start:Start the daemon in the background; returns once it answers, printing its address' \
'stop:Stop the daemon\: in-flight requests finish first (SIGTERM, SIGKILL after 20s)' \
'status:Address, status page, pid, uptime, cache size, requests served, hits and misses (exit 1 if not running)' \
'logs:Print the daemon'\''s log' \
'ensure:Start the daemon unless it runs, then print its address (for scripts)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx daemon help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__help__subcmd__ensure_commands] )) ||
_dpx__subcmd__daemon__subcmd__help__subcmd__ensure_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon help ensure commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__help__subcmd__help_commands] )) ||
_dpx__subcmd__daemon__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon help help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__help__subcmd__logs_commands] )) ||
_dpx__subcmd__daemon__subcmd__help__subcmd__logs_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon help logs commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__help__subcmd__start_commands] )) ||
_dpx__subcmd__daemon__subcmd__help__subcmd__start_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon help start commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__help__subcmd__status_commands] )) ||
_dpx__subcmd__daemon__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon help status commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__help__subcmd__stop_commands] )) ||
_dpx__subcmd__daemon__subcmd__help__subcmd__stop_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon help stop commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__logs_commands] )) ||
_dpx__subcmd__daemon__subcmd__logs_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon logs commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__start_commands] )) ||
_dpx__subcmd__daemon__subcmd__start_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon start commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__status_commands] )) ||
_dpx__subcmd__daemon__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon status commands' commands "$@"
}
(( $+functions[_dpx__subcmd__daemon__subcmd__stop_commands] )) ||
_dpx__subcmd__daemon__subcmd__stop_commands() {
    local commands; commands=()
    _describe -t commands 'dpx daemon stop commands' commands "$@"
}
(( $+functions[_dpx__subcmd__doctor_commands] )) ||
_dpx__subcmd__doctor_commands() {
    local commands; commands=()
    _describe -t commands 'dpx doctor commands' commands "$@"
}
(( $+functions[_dpx__subcmd__env_commands] )) ||
_dpx__subcmd__env_commands() {
    local commands; commands=()
    _describe -t commands 'dpx env commands' commands "$@"
}
(( $+functions[_dpx__subcmd__export_commands] )) ||
_dpx__subcmd__export_commands() {
    local commands; commands=()
    _describe -t commands 'dpx export commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help_commands] )) ||
_dpx__subcmd__help_commands() {
    local commands; commands=(
'pull:Fetch images (manifest, config, layers) into the cache' \
'prefetch:Warm the cache for many images at once' \
'serve:Run the localhost registry mirror, with a status page for browsers at /' \
'purge:Remove images and content from the cache to free disk space' \
'cache:Look after the cache\: list its images, show its disk use, check it, find it' \
'export:Write cached images to an OCI image layout archive (tar), without the network' \
'import:Verify an OCI image layout archive and add its images to the cache' \
'ratelimit:Show the Docker Hub pull quota left, without spending a pull (--cached\: the last figures seen, no network)' \
'stats:Manifest requests answered from the cache, and manifest GETs/HEADs sent upstream' \
'daemon:Run the mirror in the background for this cache\: start, stop, status, logs, ensure' \
'login:Log in to an upstream registry\: check the credentials with it, then store them' \
'logout:Remove a registry'\''s credentials from dpx'\''s store' \
'completions:Print shell completions' \
'man:Print the man page (roff)' \
'setup:Point docker, containerd or podman at the dpx mirror' \
'env:Print the variables a shell or CI job needs to pull through dpx' \
'doctor:Check why pulls might not go through the cache, and say how to fix it' \
'config:Show the effective configuration and where it comes from' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__cache_commands] )) ||
_dpx__subcmd__help__subcmd__cache_commands() {
    local commands; commands=(
'ls:List the images in the cache' \
'du:Disk usage\: total, by registry, by repository (shared blobs counted once)' \
'verify:Re-hash every blob and manifest; remove what does not match its digest' \
'path:Print the cache directory' \
    )
    _describe -t commands 'dpx help cache commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__cache__subcmd__du_commands] )) ||
_dpx__subcmd__help__subcmd__cache__subcmd__du_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help cache du commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__cache__subcmd__ls_commands] )) ||
_dpx__subcmd__help__subcmd__cache__subcmd__ls_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help cache ls commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__cache__subcmd__path_commands] )) ||
_dpx__subcmd__help__subcmd__cache__subcmd__path_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help cache path commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__cache__subcmd__verify_commands] )) ||
_dpx__subcmd__help__subcmd__cache__subcmd__verify_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help cache verify commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__completions_commands] )) ||
_dpx__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help completions commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__config_commands] )) ||
_dpx__subcmd__help__subcmd__config_commands() {
    local commands; commands=(
'show:Every setting'\''s effective value and where it came from (default, file, env, flag)' \
'path:Print the config file'\''s path' \
'set:Set a key in the config file (created if missing); the file is changed only when the result loads, keeping its comments and order' \
'unset:Remove a key from the config file\: its default applies again' \
'edit:Open the config file in \$VISUAL or \$EDITOR; the edit is kept only when it loads' \
    )
    _describe -t commands 'dpx help config commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__config__subcmd__edit_commands] )) ||
_dpx__subcmd__help__subcmd__config__subcmd__edit_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help config edit commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__config__subcmd__path_commands] )) ||
_dpx__subcmd__help__subcmd__config__subcmd__path_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help config path commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__config__subcmd__set_commands] )) ||
_dpx__subcmd__help__subcmd__config__subcmd__set_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help config set commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__config__subcmd__show_commands] )) ||
_dpx__subcmd__help__subcmd__config__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help config show commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__config__subcmd__unset_commands] )) ||
_dpx__subcmd__help__subcmd__config__subcmd__unset_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help config unset commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__daemon_commands] )) ||
_dpx__subcmd__help__subcmd__daemon_commands() {
    local commands; commands=(
'start:Start the daemon in the background; returns once it answers, printing its address' \
'stop:Stop the daemon\: in-flight requests finish first (SIGTERM, SIGKILL after 20s)' \
'status:Address, status page, pid, uptime, cache size, requests served, hits and misses (exit 1 if not running)' \
'logs:Print the daemon'\''s log' \
'ensure:Start the daemon unless it runs, then print its address (for scripts)' \
    )
    _describe -t commands 'dpx help daemon commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__daemon__subcmd__ensure_commands] )) ||
_dpx__subcmd__help__subcmd__daemon__subcmd__ensure_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help daemon ensure commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__daemon__subcmd__logs_commands] )) ||
_dpx__subcmd__help__subcmd__daemon__subcmd__logs_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help daemon logs commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__daemon__subcmd__start_commands] )) ||
_dpx__subcmd__help__subcmd__daemon__subcmd__start_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help daemon start commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__daemon__subcmd__status_commands] )) ||
_dpx__subcmd__help__subcmd__daemon__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help daemon status commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__daemon__subcmd__stop_commands] )) ||
_dpx__subcmd__help__subcmd__daemon__subcmd__stop_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help daemon stop commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__doctor_commands] )) ||
_dpx__subcmd__help__subcmd__doctor_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help doctor commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__env_commands] )) ||
_dpx__subcmd__help__subcmd__env_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help env commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__export_commands] )) ||
_dpx__subcmd__help__subcmd__export_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help export commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__help_commands] )) ||
_dpx__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__import_commands] )) ||
_dpx__subcmd__help__subcmd__import_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help import commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__login_commands] )) ||
_dpx__subcmd__help__subcmd__login_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help login commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__logout_commands] )) ||
_dpx__subcmd__help__subcmd__logout_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help logout commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__man_commands] )) ||
_dpx__subcmd__help__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help man commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__prefetch_commands] )) ||
_dpx__subcmd__help__subcmd__prefetch_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help prefetch commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__pull_commands] )) ||
_dpx__subcmd__help__subcmd__pull_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help pull commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__purge_commands] )) ||
_dpx__subcmd__help__subcmd__purge_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help purge commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__ratelimit_commands] )) ||
_dpx__subcmd__help__subcmd__ratelimit_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help ratelimit commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__serve_commands] )) ||
_dpx__subcmd__help__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help serve commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__setup_commands] )) ||
_dpx__subcmd__help__subcmd__setup_commands() {
    local commands; commands=(
'docker:Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json' \
'containerd:Print (or --apply\: write) containerd hosts.toml files for docker.io and each configured registry, and the CRI'\''s config_path in containerd'\''s config.toml' \
'podman:Print the registries.conf mirror stanzas for podman, buildah and CRI-O' \
'systemd:Print (or --apply\: install) a systemd .socket + .service pair\: the first connection to the port starts dpx, which stops again when idle' \
    )
    _describe -t commands 'dpx help setup commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__setup__subcmd__containerd_commands] )) ||
_dpx__subcmd__help__subcmd__setup__subcmd__containerd_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help setup containerd commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__setup__subcmd__docker_commands] )) ||
_dpx__subcmd__help__subcmd__setup__subcmd__docker_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help setup docker commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__setup__subcmd__podman_commands] )) ||
_dpx__subcmd__help__subcmd__setup__subcmd__podman_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help setup podman commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__setup__subcmd__systemd_commands] )) ||
_dpx__subcmd__help__subcmd__setup__subcmd__systemd_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help setup systemd commands' commands "$@"
}
(( $+functions[_dpx__subcmd__help__subcmd__stats_commands] )) ||
_dpx__subcmd__help__subcmd__stats_commands() {
    local commands; commands=()
    _describe -t commands 'dpx help stats commands' commands "$@"
}
(( $+functions[_dpx__subcmd__import_commands] )) ||
_dpx__subcmd__import_commands() {
    local commands; commands=()
    _describe -t commands 'dpx import commands' commands "$@"
}
(( $+functions[_dpx__subcmd__login_commands] )) ||
_dpx__subcmd__login_commands() {
    local commands; commands=()
    _describe -t commands 'dpx login commands' commands "$@"
}
(( $+functions[_dpx__subcmd__logout_commands] )) ||
_dpx__subcmd__logout_commands() {
    local commands; commands=()
    _describe -t commands 'dpx logout commands' commands "$@"
}
(( $+functions[_dpx__subcmd__man_commands] )) ||
_dpx__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'dpx man commands' commands "$@"
}
(( $+functions[_dpx__subcmd__prefetch_commands] )) ||
_dpx__subcmd__prefetch_commands() {
    local commands; commands=()
    _describe -t commands 'dpx prefetch commands' commands "$@"
}
(( $+functions[_dpx__subcmd__pull_commands] )) ||
_dpx__subcmd__pull_commands() {
    local commands; commands=()
    _describe -t commands 'dpx pull commands' commands "$@"
}
(( $+functions[_dpx__subcmd__purge_commands] )) ||
_dpx__subcmd__purge_commands() {
    local commands; commands=()
    _describe -t commands 'dpx purge commands' commands "$@"
}
(( $+functions[_dpx__subcmd__ratelimit_commands] )) ||
_dpx__subcmd__ratelimit_commands() {
    local commands; commands=()
    _describe -t commands 'dpx ratelimit commands' commands "$@"
}
(( $+functions[_dpx__subcmd__serve_commands] )) ||
_dpx__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'dpx serve commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup_commands] )) ||
_dpx__subcmd__setup_commands() {
    local commands; commands=(
'docker:Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json' \
'containerd:Print (or --apply\: write) containerd hosts.toml files for docker.io and each configured registry, and the CRI'\''s config_path in containerd'\''s config.toml' \
'podman:Print the registries.conf mirror stanzas for podman, buildah and CRI-O' \
'systemd:Print (or --apply\: install) a systemd .socket + .service pair\: the first connection to the port starts dpx, which stops again when idle' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx setup commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__containerd_commands] )) ||
_dpx__subcmd__setup__subcmd__containerd_commands() {
    local commands; commands=()
    _describe -t commands 'dpx setup containerd commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__docker_commands] )) ||
_dpx__subcmd__setup__subcmd__docker_commands() {
    local commands; commands=()
    _describe -t commands 'dpx setup docker commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__help_commands] )) ||
_dpx__subcmd__setup__subcmd__help_commands() {
    local commands; commands=(
'docker:Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json' \
'containerd:Print (or --apply\: write) containerd hosts.toml files for docker.io and each configured registry, and the CRI'\''s config_path in containerd'\''s config.toml' \
'podman:Print the registries.conf mirror stanzas for podman, buildah and CRI-O' \
'systemd:Print (or --apply\: install) a systemd .socket + .service pair\: the first connection to the port starts dpx, which stops again when idle' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'dpx setup help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__help__subcmd__containerd_commands] )) ||
_dpx__subcmd__setup__subcmd__help__subcmd__containerd_commands() {
    local commands; commands=()
    _describe -t commands 'dpx setup help containerd commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__help__subcmd__docker_commands] )) ||
_dpx__subcmd__setup__subcmd__help__subcmd__docker_commands() {
    local commands; commands=()
    _describe -t commands 'dpx setup help docker commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__help__subcmd__help_commands] )) ||
_dpx__subcmd__setup__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'dpx setup help help commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__help__subcmd__podman_commands] )) ||
_dpx__subcmd__setup__subcmd__help__subcmd__podman_commands() {
    local commands; commands=()
    _describe -t commands 'dpx setup help podman commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__help__subcmd__systemd_commands] )) ||
_dpx__subcmd__setup__subcmd__help__subcmd__systemd_commands() {
    local commands; commands=()
    _describe -t commands 'dpx setup help systemd commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__podman_commands] )) ||
_dpx__subcmd__setup__subcmd__podman_commands() {
    local commands; commands=()
    _describe -t commands 'dpx setup podman commands' commands "$@"
}
(( $+functions[_dpx__subcmd__setup__subcmd__systemd_commands] )) ||
_dpx__subcmd__setup__subcmd__systemd_commands() {
    local commands; commands=()
    _describe -t commands 'dpx setup systemd commands' commands "$@"
}
(( $+functions[_dpx__subcmd__stats_commands] )) ||
_dpx__subcmd__stats_commands() {
    local commands; commands=()
    _describe -t commands 'dpx stats commands' commands "$@"
}

if [ "$funcstack[1]" = "_dpx" ]; then
    _dpx "$@"
else
    compdef _dpx dpx
fi
