#!/bin/sh
# The embedded front end of `make run`: nginx, from Debian's package, in the foreground (under
# supervisord), listening on 127.0.0.1:$WEB_PORT and passing complete requests to gunicorn on the
# Unix socket $CALSERV_VAR_DIR/run/web/web.sock (a directory only its owner may enter: nothing but
# this nginx reaches gunicorn). Its configuration is written to $CALSERV_VAR_DIR/run/nginx.conf
# on each start; what matters is in deploy/nginx/calserv-proxy.conf, shared with production.
# Usage: deploy/nginx.sh   (CALSERV_VAR_DIR and WEB_PORT from the environment)
set -eu
cd "$(dirname "$0")/.."
VAR="${CALSERV_VAR_DIR:-$PWD/var}"
RUN="$VAR/run"
mkdir -p "$RUN" "$VAR/log" "$VAR/nginx"
# nginx started as root runs its workers as this user: the one that owns the socket's directory.
user="$(id -un)"
cat >"$RUN/nginx.conf" <<CONF
worker_processes 1;
pid $RUN/nginx.pid;
error_log stderr warn;
$( [ "$(id -u)" = 0 ] && echo "user $user;" )
events { worker_connections 4096; }
http {
    access_log off;  # gunicorn logs each request (with the key redacted)
    client_body_temp_path $VAR/nginx/body;
    proxy_temp_path $VAR/nginx/proxy;
    fastcgi_temp_path $VAR/nginx/fastcgi;
    uwsgi_temp_path $VAR/nginx/uwsgi;
    scgi_temp_path $VAR/nginx/scgi;
    upstream calserv_web { server unix:$RUN/web/web.sock; keepalive 8; }
    server {
        listen 127.0.0.1:${WEB_PORT:-5000};
        server_tokens off;
        include $PWD/deploy/nginx/calserv-proxy.conf;
        location / { proxy_pass http://calserv_web; }
    }
}
CONF
exec "$(command -v nginx || echo /usr/sbin/nginx)" -e stderr -p "$VAR/nginx" -c "$RUN/nginx.conf" -g "daemon off;"
