#!/bin/sh
# The per-slot baseline of scripts/bench: the traditional way, one init script per PHP-FPM slot,
# each run in turn. The slot runscript below mirrors what Gentoo's (dev-lang/php
# files/php-fpm-r4.init: start-stop-daemon --start --pidfile --exec php-fpm -- --fpm-config … --pid …,
# then a one-second-step wait for the pidfile; stop with start-stop-daemon --stop --pidfile) and
# Alpine's (community/php82/php82-fpm.initd: checkconfig, i.e. `php-fpm --test --fpm-config …`, in
# start_pre) runscripts do per slot, with start-stop-daemon from Debian's dpkg (the one OpenRC
# uses on Debian; Debian's openrc package ships no start-stop-daemon binary of its own).
#
# It is a generous baseline: each slot costs one /bin/sh process, not a whole openrc-run with its
# dependency resolution and service state files.
#
#   per-slot.sh ACTION LIST      ACTION: start | stop | status; LIST: lines "name config pidfile"
#   per-slot.sh --slot ACTION NAME CONFIG PIDFILE   (one slot's runscript; used by the loop)
#
# Exit status: 0 when every slot succeeded (status: every slot is running), else 1.
set -u
FPM=${FPM:-/usr/sbin/php-fpm8.2}
SSD=${SSD:-start-stop-daemon}

if [ "${1:-}" = --slot ]; then
	action=$2 name=$3 config=$4 pidfile=$5

	configtest() {
		# Gentoo and Alpine hide the "test is successful" chatter and show it only on failure.
		out=$("$FPM" --fpm-config "$config" --test 2>&1) || {
			printf '%s: configuration test failed:\n%s\n' "$name" "$out" >&2
			return 1
		}
	}

	case $action in
	start)
		configtest || exit 1
		"$SSD" --start --quiet --pidfile "$pidfile" --exec "$FPM" -- \
			--fpm-config "$config" --pid "$pidfile" || exit 1
		# Gentoo's wait for the pidfile, in whole seconds (php-fpm daemonizes once it is ready,
		# so the pidfile is normally there already and this loop does not sleep).
		i=0
		while [ ! -f "$pidfile" ] && [ $i -le 5 ]; do
			sleep 1
			i=$((i + 1))
		done
		[ -f "$pidfile" ]
		;;
	stop)
		"$SSD" --stop --quiet --retry QUIT/10/TERM/5/KILL/5 --pidfile "$pidfile" --exec "$FPM"
		;;
	status)
		"$SSD" --status --pidfile "$pidfile"
		;;
	*)
		echo "per-slot.sh: unknown action $action" >&2
		exit 2
		;;
	esac
	exit
fi

action=$1 list=$2
rc=0
# One runscript per slot, in sequence, as an init system runs one service after the other.
while read -r name config pidfile; do
	/bin/sh "$0" --slot "$action" "$name" "$config" "$pidfile" || rc=1
done <"$list"
exit $rc
