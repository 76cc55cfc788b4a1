#!/bin/sh
# The floor of scripts/bench: the work starting or stopping N PHP-FPM instances cannot avoid,
# with no checks at all.
#
#   floor.sh start LIST   every instance's launch at once, then wait for all (no config test:
#                         php-fpm's start-up is one, and the controller no longer runs -t before
#                         starting a stopped instance, so the unavoidable work is the launch)
#   floor.sh stop LIST    SIGQUIT to every master named by a pidfile, then poll /proc every 10 ms
#                         until all are gone
#
# LIST: lines "name config pidfile". A zombie counts as gone: it has exited and only waits for
# init to reap it (which some init processes do only every few seconds).
set -u
FPM=${FPM:-/usr/sbin/php-fpm8.2}
action=$1 list=$2

case $action in
start)
	while read -r name config pidfile; do
		"$FPM" --fpm-config "$config" --pid "$pidfile" --daemonize &
	done <"$list"
	wait
	;;
stop)
	pids=
	while read -r name config pidfile; do
		pid=
		# php-fpm writes the bare pid, without a newline: read then fails at EOF but sets it.
		read -r pid <"$pidfile" || :
		[ -n "$pid" ] && pids="$pids $pid"
	done <"$list"
	[ -n "$pids" ] || exit 0
	# shellcheck disable=SC2086 # one word per pid
	kill -QUIT $pids
	alive() {
		{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
		stat=${stat##*) }
		state=${stat%% *}
		[ "$state" != Z ] && [ "$state" != X ]
	}
	while :; do
		left=
		for pid in $pids; do
			alive "$pid" && left="$left $pid"
		done
		[ -n "$left" ] || break
		pids=$left
		sleep 0.01
	done
	;;
*)
	echo "floor.sh: unknown action $action" >&2
	exit 2
	;;
esac
