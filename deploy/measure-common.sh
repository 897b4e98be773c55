# Shared by deploy/measure-*.sh (sourced): a free loopback port, waiting for a started server's /healthz, and the
# wrk script that uploads one JPEG.

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until_healthy PORT PID: returns once GET /healthz answers; fails if the process exits first.
wait_until_healthy() {
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || { echo "cbam-serve exited during start" >&2; return 1; }
        sleep 0.2
    done
    echo "cbam-serve did not answer /healthz within 60 s" >&2
    return 1
}

# post_jpeg_lua IMAGE: prints the lines of a wrk script that POSTs IMAGE as image/jpeg with every request.
post_jpeg_lua() {
    cat <<LUA
local f = assert(io.open("$1", "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"
LUA
}
