# Start tests/lib/httpd.py for the current test (bash, after common.sh):
#
#   azl_httpd_start ROOT [LOG]   serve ROOT on 127.0.0.1; sets AZL_HTTPD_PORT
#                                and AZL_HTTPD_URL (http://127.0.0.1:PORT);
#                                the server is stopped when the test exits
#
# Not in a $(...) subshell: the exit hook must be registered in the test's
# own shell.  Fault injection and throttling are URL prefixes, see httpd.py.
# shellcheck shell=bash

azl_httpd_start() {
	local root=$1 log=${2:-} d pid i
	d=$(azl_tmpdir)
	python3 "$AZL_TOP/tests/lib/httpd.py" --root "$root" --port-file "$d/port" \
		${log:+--log "$log"} >"$d/httpd.out" 2>&1 &
	pid=$!
	azl_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
	for ((i = 0; i < 200; i++)); do
		[ -s "$d/port" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$d/port" ] || fail "httpd.py did not start: $(cat "$d/httpd.out")"
	AZL_HTTPD_PORT=$(cat "$d/port")
	AZL_HTTPD_URL=http://127.0.0.1:$AZL_HTTPD_PORT
	export AZL_HTTPD_PORT AZL_HTTPD_URL
}
