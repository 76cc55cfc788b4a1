#!/bin/sh
# Installs php-fpm-multi from a built checkout (run scripts/setup first), or removes it:
#
#   ${EPREFIX}/usr/lib/php-fpm-multi/   the controller: ONE file, php-fpm-multi.cjs (dist/cli.js,
#                                       bundled with its npm dependencies by npm run build), and
#                                       its V8 code cache php-fpm-multi.cjs.v8-cache
#   ${EPREFIX}/usr/bin/php-fpm-multi    the command: runs the controller with node, EPREFIX set
#   ${EPREFIX}/etc/init.d/php-fpm       the OpenRC runscript
#   ${EPREFIX}/etc/conf.d/php-fpm       the commented example; an existing file is never
#                                       overwritten (the example goes to php-fpm.example then)
#   ${EPREFIX}/usr/share/man/man8/php-fpm-multi.8
#                                       the manual page (docs/php-fpm-multi.8)
#   ${EPREFIX}/usr/share/bash-completion/completions/php-fpm-multi
#                                       the bash completion (scripts/php-fpm-multi.bash-completion)
#   ${EPREFIX}/etc/logrotate.d/php-fpm-multi
#                                       rotates ${EPREFIX}/var/log/php-fpm-multi/*.log, then
#                                       `php-fpm-multi reopen` for every declaration file
#   ${EPREFIX}/var/log/php-fpm-multi/   where instances' error_log files go (created; kept)
#
# Every path is under ${DESTDIR} when it is set (packaging). Run `scripts/install.sh --help`.
set -eu

usage() {
	cat <<'EOF'
Usage: scripts/install.sh [--uninstall] [--force] [VARIABLE=value …]

Installs php-fpm-multi (the controller, the php-fpm-multi command, the OpenRC runscript, the
conf.d example, the logrotate snippet for /var/log/php-fpm-multi/*.log, the manual page and
the bash completion), or with --uninstall removes what it installed, except a conf.d file that
was edited and the log directory. Build the checkout first (scripts/setup).

Variables (from the environment or as arguments):
  DESTDIR    stage everything under this directory (packaging); the installed files still
             name their final paths
  EPREFIX    the Gentoo Prefix (or any prefix): every path, and every default path of the
             installed runscript and controller, is under it. Works as an ordinary user.
  NODE       the node program the command runs (default: node on $PATH, made absolute)
  CONF_FORM  array or string: the form of the conf.d example (default: array when
             ${EPREFIX}/bin/sh, else /bin/sh, is bash; string otherwise, because OpenRC sources
             conf.d files with /bin/sh and only bash reads arrays)

Options:
  --uninstall  remove the installed files; keeps an edited conf.d file and says so
  --force      install over, or remove, an init.d/php-fpm that is not php-fpm-multi's;
               uninstall while OpenRC has the service started, or while instances
               php-fpm-multi started still run (their records in the run directories)
  -h, --help   this help
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

uninstall=
force=
for arg in "$@"; do
	case $arg in
	--uninstall) uninstall=1 ;;
	--force) force=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	DESTDIR=* | EPREFIX=* | NODE=* | CONF_FORM=*)
		name=${arg%%=*}
		eval "$name=\${arg#*=}"
		;;
	*)
		usage >&2
		die "unknown argument: $arg"
		;;
	esac
done

cd "$(dirname "$0")/.."
source_dir=$(pwd)

DESTDIR=${DESTDIR:-}
EPREFIX=${EPREFIX:-}
nl='
'
# Paths go into sed replacements and single-quoted shell words.
for value in "$DESTDIR" "$EPREFIX"; do
	case $value in
	*"'"* | *'|'* | *'&'* | *'\'* | *"$nl"*) die "DESTDIR and EPREFIX must not contain ' | & \\ or newlines: $value" ;;
	esac
done
case $EPREFIX in
'' | /*) ;;
*) die "EPREFIX must be an absolute path: $EPREFIX" ;;
esac
case $DESTDIR in
'' | /*) ;;
*) DESTDIR=$source_dir/$DESTDIR ;;
esac
# Strip trailing slashes ("/" alone means no prefix).
while :; do
	case $EPREFIX in
	*/) EPREFIX=${EPREFIX%/} ;;
	*) break ;;
	esac
done
while :; do
	case $DESTDIR in
	*/) DESTDIR=${DESTDIR%/} ;;
	*) break ;;
	esac
done

# Final paths (inside the installed files) and where they are written (under DESTDIR).
libdir=$EPREFIX/usr/lib/php-fpm-multi
bindir=$EPREFIX/usr/bin
sysconfdir=$EPREFIX/etc
command_file=$bindir/php-fpm-multi
runscript_file=$sysconfdir/init.d/php-fpm
conf_file=$sysconfdir/conf.d/php-fpm
example_file=$sysconfdir/conf.d/php-fpm.example
man_file=$EPREFIX/usr/share/man/man8/php-fpm-multi.8
# bash-completion's directory for completions loaded on demand (on Debian, what
# `pkg-config --variable=completionsdir bash-completion` names), under EPREFIX.
completion_file=$EPREFIX/usr/share/bash-completion/completions/php-fpm-multi
logrotate_file=$sysconfdir/logrotate.d/php-fpm-multi
logdir=$EPREFIX/var/log/php-fpm-multi
MARKER='installed by php-fpm-multi scripts/install.sh'
controller=$libdir/php-fpm-multi.cjs
# Line 2 of the bundle (scripts/build.mjs writes it): how an installed controller is recognised.
BUNDLE_LINE='^// php-fpm-multi [^ ]*: the controller in one file '

# Whether directory $1 holds php-fpm-multi's controller: the one bundled file, or (installed by an
# older version) dist/ with the package.json and node_modules/.
holds_controller() {
	{ [ -f "$1/php-fpm-multi.cjs" ] && sed -n 2p "$1/php-fpm-multi.cjs" | grep -q "$BUNDLE_LINE"; } ||
		{ [ -f "$1/package.json" ] && grep -q '"name": "php-fpm-multi"' "$1/package.json"; }
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/php-fpm-multi-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The shell OpenRC sources conf.d files with, as the controller's `check` finds it.
system_shell() {
	if [ -e "$EPREFIX/bin/sh" ]; then
		readlink -f "$EPREFIX/bin/sh"
	else
		readlink -f /bin/sh
	fi
}

# The example in bash's array form: conf.d/php-fpm as it is.
render_array_example() {
	cat "$source_dir/conf.d/php-fpm"
}

# The example in the string form: every array assignment of an FPM_ variable (commented out or
# not) rewritten as FPM_x="word word …", the string-form copies that then repeat it dropped, and
# a note saying why. An array that cannot be rewritten safely is left as it is.
render_string_example() {
	awk -v shell="$1" -v sq="'" '
function emit(line, converted) { n++; out[n] = line; conv[n] = converted }
function endword() { if (incur) { nwords++; words[nwords] = cur; cur = ""; incur = 0 } }
function parse(s,    i, c, q, part) {
	i = 1
	while (i <= length(s)) {
		c = substr(s, i, 1)
		if (c == " " || c == "\t") { endword(); i++; continue }
		if (c == "#" && !incur) return
		if (c == ")") {
			endword(); done = 1
			if (substr(s, i + 1) !~ /^[ \t]*(#.*)?$/) bad = 1
			return
		}
		if (c == "\"" || c == sq) {
			q = index(substr(s, i + 1), c)
			if (q == 0) { bad = 1; done = 1; return }
			part = substr(s, i + 1, q - 1)
			if (c == "\"" && part ~ /[\\`]/) bad = 1
			cur = cur part; incur = 1; i += q + 1; continue
		}
		if (c ~ /[\\`$*?\[~;&|<>(]/) bad = 1
		cur = cur c; incur = 1; i++
	}
	endword()
}
function finish(    i, word, value) {
	inarray = 0
	value = ""
	for (i = 1; i <= nwords; i++) {
		word = words[i]
		if (index(word, sq) || index(word, "\"")) bad = 1
		if (word == "" || word ~ /[ \t]/) word = sq word sq
		value = value (i > 1 ? " " : "") word
	}
	if (bad) { for (i = 1; i <= nblock; i++) emit(block[i], 0); return }
	emit(prefix name "=\"" value "\"", 1)
}
NR == 1 {
	emit("# !!! NO ARRAYS IN THIS FILE: /bin/sh here is " shell ", not bash. !!!", 0)
	emit("# OpenRC sources this file with /bin/sh before the service runs. One array, such as", 0)
	emit("# FPM_slot_<name>=( … ), and EVERY rc-service command of the service (start, stop, status)", 0)
	emit("# fails with nothing but:   Syntax error: \"(\" unexpected", 0)
	emit("# Write every instance in the string form: FPM_slot_<name>=\"key=value …\"", 0)
	emit("# (php-fpm-multi check refuses arrays here and prints each one rewritten).", 0)
	emit("#", 0)
	emit($0, 0)
	emit("#", 0)
	emit("# This copy was installed by php-fpm-multi (scripts/install.sh) in the string form,", 0)
	emit("# FPM_slot_<name>=\"key=value …\", because /bin/sh here is " shell ", not bash: OpenRC sources", 0)
	emit("# this file with /bin/sh, and an array (FPM_slot_<name>=( … )) is a syntax error there that", 0)
	emit("# stops the service before php-fpm-multi runs. Write every instance in the string form.", 0)
	next
}
inarray {
	nblock++; block[nblock] = $0
	line = $0
	if (prefix != "") {
		if (substr(line, 1, 1) != "#") { bad = 1; done = 1 }
		else line = substr(line, 2)
	}
	if (!done) parse(line)
	if (done) finish()
	next
}
match($0, /^(# ?)?FPM_[A-Za-z0-9_]+=\(/) {
	head = substr($0, 1, RLENGTH - 1)
	prefix = head; sub(/FPM_.*$/, "", prefix)
	name = substr(head, length(prefix) + 1); sub(/=$/, "", name)
	nblock = 1; block[1] = $0
	nwords = 0; cur = ""; incur = 0; bad = 0; done = 0; inarray = 1
	parse(substr($0, RLENGTH + 1))
	if (done) finish()
	next
}
{ emit($0, 0) }
END {
	if (inarray) for (i = 1; i <= nblock; i++) emit(block[i], 0)
	for (i = 1; i <= n; i++) if (conv[i]) seen[out[i]] = 1
	for (i = 1; i <= n; i++) if (!conv[i] && (out[i] in seen)) drop[i] = 1
	# A heading ("…:") whose lines were all dropped goes too.
	for (i = 1; i <= n; i++) {
		if (conv[i] || drop[i] || out[i] !~ /:[ \t]*$/) continue
		any = 0; kept = 0
		for (j = i + 1; j <= n && out[j] !~ /^#?[ \t]*$/; j++) { any = 1; if (!drop[j]) kept = 1 }
		if (any && !kept) drop[i] = 1
	}
	# Print, without doubling a blank line where lines were dropped.
	last = ""; gap = 0
	for (i = 1; i <= n; i++) {
		if (drop[i]) { gap = 1; continue }
		if (gap && out[i] ~ /^#?[ \t]*$/ && out[i] == last) { gap = 0; continue }
		print out[i]; last = out[i]; gap = 0
	}
}' "$source_dir/conf.d/php-fpm"
}

render_runscript() {
	sed -e "1s|^#!/sbin/openrc-run|#!$EPREFIX/sbin/openrc-run|" \
		-e "s|@BINDIR@|$bindir|g" \
		-e "s|@SYSCONFDIR@|$sysconfdir|g" \
		"$source_dir/init.d/php-fpm.in"
}

render_logrotate() {
	sed -e "s|@BINDIR@|$bindir|g" \
		-e "s|@SYSCONFDIR@|$sysconfdir|g" \
		-e "s|@LOGDIR@|$logdir|g" \
		"$source_dir/scripts/php-fpm-multi.logrotate.in"
}

# Is FILE identical to the example in either form?
is_pristine_example() {
	render_array_example >"$tmp/example.array"
	render_string_example "$(system_shell)" >"$tmp/example.string"
	cmp -s "$1" "$tmp/example.array" || cmp -s "$1" "$tmp/example.string"
}

is_ours() {
	[ -f "$1" ] && grep -q 'php-fpm-multi' "$1"
}

# The run directories of the installed declaration files, one "DIR FILE" line each: FPM_run_dir=
# of each conf.d file (read, never executed: a plain assignment), else its default run directory;
# and every directory under the default root, for a file since renamed or removed.
list_run_dirs() {
	for file in "$DESTDIR$conf_file" "$DESTDIR$conf_file".*; do
		[ -f "$file" ] || continue
		case $file in *.example) continue ;; esac
		dir=$(sed -n "s/^[[:space:]]*FPM_run_dir=[\"']\{0,1\}\(\/[^\"' #]*\).*/\1/p" "$file" | tail -n 1)
		[ -n "$dir" ] || dir=$EPREFIX/run/php-fpm-multi/${file##*/}
		printf '%s %s\n' "$DESTDIR$dir" "${file#"$DESTDIR"}"
	done
	for dir in "$DESTDIR$EPREFIX"/run/php-fpm-multi/*/; do
		[ -d "$dir" ] || continue
		dir=${dir%/}
		printf '%s %s\n' "$dir" "$sysconfdir/conf.d/${dir##*/}"
	done
}

# Records of instances that still run: a record whose pid is alive with the start time it
# recorded (field 22 of /proc/PID/stat, in clock ticks since boot); a recycled pid does not count.
find_live_records() {
	list_run_dirs | sort -u | while read -r dir file; do
		for record in "$dir"/*.record.json; do
			[ -f "$record" ] || continue
			content=$(head -c 65536 "$record")
			pid=$(printf '%s\n' "$content" | sed -n 's/.*"pid":\([0-9][0-9]*\).*/\1/p')
			ticks=$(printf '%s\n' "$content" | sed -n 's/.*"startTimeTicks":\([0-9][0-9]*\).*/\1/p')
			[ -n "$pid" ] && [ -n "$ticks" ] || continue
			stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
			# The command name (field 2) may hold spaces and parentheses: count from the last ')'.
			set -f
			# shellcheck disable=SC2086
			set -- ${stat##*) }
			set +f
			[ "$#" -ge 20 ] && [ "${20}" = "$ticks" ] || continue
			name=${record##*/}
			printf '  %s (pid %s, %s): php-fpm-multi --conf %s stop %s\n' "${name%.record.json}" "$pid" "$record" "$file" "${name%.record.json}"
		done
	done
}

if [ -n "$uninstall" ]; then
	if [ -z "$DESTDIR" ] && [ -z "$force" ]; then
		for started in "$EPREFIX"/run/openrc/started/php-fpm "$EPREFIX"/run/openrc/started/php-fpm.*; do
			[ -e "$started" ] || continue
			die "OpenRC has the service ${started##*/} started: stop it first (rc-service ${started##*/} stop), or use --force"
		done
	fi
	# Instances started with `php-fpm-multi start` (the OpenRC service stopped, or never used) would
	# keep running without the controller that can stop them.
	if [ -z "$force" ]; then
		live=$(find_live_records)
		[ -z "$live" ] || die "instances started by php-fpm-multi still run; stop them first (then run --uninstall again), or use --force to leave them running:
$live"
	fi
	if holds_controller "$DESTDIR$libdir"; then
		rm -rf "$DESTDIR$libdir"
		say "removed $DESTDIR$libdir"
	elif [ -e "$DESTDIR$libdir" ]; then
		say "kept $DESTDIR$libdir: it does not hold php-fpm-multi"
	fi
	if [ -f "$DESTDIR$command_file" ] && grep -q "$MARKER" "$DESTDIR$command_file"; then
		rm -f "$DESTDIR$command_file"
		say "removed $DESTDIR$command_file"
	elif [ -e "$DESTDIR$command_file" ]; then
		say "kept $DESTDIR$command_file: it was not installed by this script"
	fi
	if is_ours "$DESTDIR$runscript_file" || { [ -n "$force" ] && [ -e "$DESTDIR$runscript_file" ]; }; then
		rm -f "$DESTDIR$runscript_file"
		say "removed $DESTDIR$runscript_file"
	elif [ -e "$DESTDIR$runscript_file" ]; then
		say "kept $DESTDIR$runscript_file: it is not php-fpm-multi's runscript"
	fi
	for file in "$DESTDIR$man_file" "$DESTDIR$completion_file"; do
		if is_ours "$file"; then
			rm -f "$file"
			say "removed $file"
		elif [ -e "$file" ]; then
			say "kept $file: it is not php-fpm-multi's"
		fi
	done
	if [ -f "$DESTDIR$logrotate_file" ] && grep -q "$MARKER" "$DESTDIR$logrotate_file"; then
		rm -f "$DESTDIR$logrotate_file"
		say "removed $DESTDIR$logrotate_file"
	elif [ -e "$DESTDIR$logrotate_file" ]; then
		say "kept $DESTDIR$logrotate_file: it was not installed by this script"
	fi
	# The logs are the admin's: an empty directory goes, one with logs stays.
	if [ -d "$DESTDIR$logdir" ] && rmdir "$DESTDIR$logdir" 2>/dev/null; then
		say "removed the empty $DESTDIR$logdir"
	elif [ -d "$DESTDIR$logdir" ]; then
		say "kept $DESTDIR$logdir: it holds logs; remove it yourself if you no longer need them"
	fi
	for link in "$DESTDIR$sysconfdir"/init.d/php-fpm.*; do
		[ -L "$link" ] || continue
		case $(readlink "$link") in
		php-fpm | */init.d/php-fpm)
			say "note: $link (a service of its own) pointed to the removed runscript; remove it with: rm $link"
			;;
		esac
	done
	for file in "$DESTDIR$conf_file" "$DESTDIR$example_file"; do
		[ -e "$file" ] || continue
		if is_pristine_example "$file"; then
			rm -f "$file"
			say "removed $file"
		else
			say "kept $file: it was edited (it declares your instances); remove it yourself if you no longer need it"
		fi
	done
	exit 0
fi

# --- install ---------------------------------------------------------------------------------

[ -f "$source_dir/dist/cli.js" ] || die "dist/cli.js is missing: build the controller first (scripts/setup, or npm ci && npm run build)"
sed -n 2p "$source_dir/dist/cli.js" | grep -q "$BUNDLE_LINE" ||
	die "dist/cli.js is not the one-file build: build it again (npm run build)"

if [ -z "${NODE:-}" ]; then
	NODE=$(command -v node) || die "node is not on \$PATH: install Node.js 20 or later, or set NODE=/path/to/node"
fi
case $NODE in
/*) ;;
*) die "NODE must be an absolute path: $NODE" ;;
esac
case $NODE in
*"'"* | *"$nl"*) die "NODE must not contain ' or newlines: $NODE" ;;
esac
if [ -x "$NODE" ]; then
	node_major=$("$NODE" -p 'process.versions.node.split(".")[0]')
	[ "$node_major" -ge 20 ] || die "$NODE is Node.js $node_major; php-fpm-multi needs 20 or later (set NODE=/path/to/node)"
else
	say "warning: $NODE is not executable here; the installed command will run it"
fi

conf_form=${CONF_FORM:-}
shell=$(system_shell)
if [ -z "$conf_form" ]; then
	case ${shell##*/} in
	bash) conf_form=array ;;
	*) conf_form=string ;;
	esac
fi
case $conf_form in
array | string) ;;
*) die "CONF_FORM must be array or string: $conf_form" ;;
esac

if [ -e "$DESTDIR$runscript_file" ] && ! is_ours "$DESTDIR$runscript_file" && [ -z "$force" ]; then
	die "$DESTDIR$runscript_file exists and is not php-fpm-multi's runscript (another package's php-fpm service?): move it away, or use --force to replace it"
fi

# The controller is one file, its npm dependencies bundled in: staged first. The .cjs name says
# CommonJS whatever package.json lies above the prefix.
stage=$tmp/lib
mkdir -p "$stage"
cp "$source_dir/dist/cli.js" "$stage/php-fpm-multi.cjs"
# Its V8 code cache (docs/BENCHMARKS.md, "Code cache"), made by this node: the controller
# compiles less at start-up. The command uses it only when it is trustworthy and made for this
# node and this controller (scripts/code-cache/loader.js); without it the controller runs as usual.
if [ -x "$NODE" ]; then
	printf 'FPM_run_dir=%s/code-cache-run\n' "$tmp" >"$tmp/empty-declaration"
	"$NODE" "$source_dir/scripts/code-cache/write.cjs" "$stage/php-fpm-multi.cjs" "$tmp/empty-declaration" >/dev/null 2>"$tmp/code-cache.err" ||
		say "warning: no code cache (the controller runs without it): $(cat "$tmp/code-cache.err")"
fi
loader=$(cat "$source_dir/scripts/code-cache/loader.js")
case $loader in
*"'"*) die "scripts/code-cache/loader.js must not contain ': the command quotes it with '" ;;
esac

if [ -e "$DESTDIR$libdir" ]; then
	if holds_controller "$DESTDIR$libdir"; then
		rm -rf "$DESTDIR$libdir"
	else
		die "$DESTDIR$libdir exists and does not hold php-fpm-multi: move it away first"
	fi
fi
mkdir -p "$(dirname "$DESTDIR$libdir")"
# -p keeps the controller's modification time: the code cache's header names it (loader.js).
cp -R -p "$stage" "$DESTDIR$libdir"
chmod -R u+rwX,go+rX,go-w "$DESTDIR$libdir"
chmod 755 "$DESTDIR$controller"
say "installed the controller in $DESTDIR$libdir"

mkdir -p "$DESTDIR$bindir"
cat >"$tmp/command" <<EOF
#!/bin/sh
# php-fpm-multi, $MARKER.
# Runs the controller with node, through the loader of its V8 code cache (node -e); its default
# paths (the declaration file, the run directory, the php-fpm programs) are under EPREFIX='$EPREFIX'.
EPREFIX='$EPREFIX'
export EPREFIX
exec '$NODE' -e '$loader' '$controller' "\$@"
EOF
rm -f "$DESTDIR$command_file"
cp "$tmp/command" "$DESTDIR$command_file"
chmod 755 "$DESTDIR$command_file"
say "installed the command $DESTDIR$command_file"

mkdir -p "$DESTDIR$sysconfdir/init.d"
render_runscript >"$tmp/runscript"
rm -f "$DESTDIR$runscript_file"
cp "$tmp/runscript" "$DESTDIR$runscript_file"
chmod 755 "$DESTDIR$runscript_file"
say "installed the OpenRC runscript $DESTDIR$runscript_file"

# A read-only data file of the checkout (0644), replacing the installed one.
install_data() {
	mkdir -p "$(dirname "$DESTDIR$2")"
	rm -f "$DESTDIR$2"
	cp "$source_dir/$1" "$DESTDIR$2"
	chmod 644 "$DESTDIR$2"
	say "installed the $3 $DESTDIR$2"
}
install_data docs/php-fpm-multi.8 "$man_file" "manual page"
install_data scripts/php-fpm-multi.bash-completion "$completion_file" "bash completion"
mkdir -p "$DESTDIR$sysconfdir/logrotate.d"
render_logrotate >"$tmp/logrotate"
if [ -e "$DESTDIR$logrotate_file" ] && ! grep -q "$MARKER" "$DESTDIR$logrotate_file"; then
	say "kept $DESTDIR$logrotate_file: it was not installed by this script (it would be replaced by ours: move it away to install ours)"
else
	rm -f "$DESTDIR$logrotate_file"
	cp "$tmp/logrotate" "$DESTDIR$logrotate_file"
	# logrotate refuses a configuration file that others may write.
	chmod 644 "$DESTDIR$logrotate_file"
	say "installed the logrotate snippet $DESTDIR$logrotate_file (rotates $logdir/*.log)"
fi
# logrotate skips a directory that group or others may write ("insecure permissions").
if [ ! -d "$DESTDIR$logdir" ]; then
	mkdir -p "$DESTDIR$logdir"
	chmod 755 "$DESTDIR$logdir"
	say "created $DESTDIR$logdir for the instances' error_log files"
fi

mkdir -p "$DESTDIR$sysconfdir/conf.d"
if [ "$conf_form" = array ]; then
	render_array_example >"$tmp/example"
else
	render_string_example "$shell" >"$tmp/example"
fi
if [ ! -e "$DESTDIR$conf_file" ]; then
	cp "$tmp/example" "$DESTDIR$conf_file"
	chmod 644 "$DESTDIR$conf_file"
	say "installed the example declaration file $DESTDIR$conf_file ($conf_form form)"
elif cmp -s "$tmp/example" "$DESTDIR$conf_file"; then
	say "kept $DESTDIR$conf_file: it is the example already"
else
	cp "$tmp/example" "$DESTDIR$example_file"
	chmod 644 "$DESTDIR$example_file"
	say "kept your $DESTDIR$conf_file; the new example is $DESTDIR$example_file ($conf_form form)"
fi
if [ "$conf_form" = string ]; then
	say "the example is in the string form (FPM_slot_<name>=\"…\") because /bin/sh is $shell, not bash: OpenRC sources conf.d files with /bin/sh, and only bash reads arrays"
fi
