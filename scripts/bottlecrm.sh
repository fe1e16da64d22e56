#!/usr/bin/env bash
# Runs a local BottleCRM (PyPI `django-crm`) beside Countersign, as a system of record to connect to.
#
#   scripts/bottlecrm.sh install   its own venv under $BOTTLECRM_HOME (pip install from the registry)
#   scripts/bottlecrm.sh setup     a PostgreSQL role and database of its own, migrate, an organisation
#                                  and a personal access token; writes $BOTTLECRM_HOME/env (its URL,
#                                  the token, and its database's URL)
#   scripts/bottlecrm.sh start     gunicorn on $BOTTLECRM_PORT, pid file, waits for /healthz/
#   scripts/bottlecrm.sh worker    its Celery worker, which sends its emails (to $BOTTLECRM_HOME/run/worker.log)
#   scripts/bottlecrm.sh stop      stops what start and worker started
#   scripts/bottlecrm.sh up        install + setup + start (each step skips what is already done)
#   scripts/bottlecrm.sh status    prints whether it answers and where
#   scripts/bottlecrm.sh admin     a sign-in for BottleCRM's own screens (its Django admin at /admin/)
#
# Environment (all optional): BOTTLECRM_HOME (default $COUNTERSIGN_VAR_DIR/bottlecrm, else var/bottlecrm), BOTTLECRM_PORT (8710),
# BOTTLECRM_DBNAME (bottlecrm), BOTTLECRM_DBUSER (bottlecrm), PGHOST/PGPORT (127.0.0.1:5432, the
# role that creates them: PGUSER, default postgres), BOTTLECRM_REDIS_URL (redis://127.0.0.1:6379/15),
# PYTHON (python3.12). Never uses sudo; downloads nothing but the pip install.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
VERSION=1.35.0
home=${BOTTLECRM_HOME:-${COUNTERSIGN_VAR_DIR:-$repo/var}/bottlecrm}
case "$home" in /*) ;; *) home="$repo/$home" ;; esac
port=${BOTTLECRM_PORT:-8710}
dbname=${BOTTLECRM_DBNAME:-bottlecrm}
dbuser=${BOTTLECRM_DBUSER:-bottlecrm}
pghost=${PGHOST:-127.0.0.1}
pgport=${PGPORT:-5432}
pgadmin=${PGUSER:-postgres}
redis_url=${BOTTLECRM_REDIS_URL:-redis://127.0.0.1:6379/15}
python=${PYTHON:-python3.12}
venv="$home/venv"
run="$home/run"
secrets="$home/settings.env"   # BottleCRM's own settings (its secret key, database password)
envfile="$home/env"            # BOTTLECRM_URL, BOTTLECRM_TOKEN, BOTTLECRM_DATABASE_URL, for Countersign
pidfile="$run/gunicorn.pid"
workerpid="$run/worker.pid"
admin_email=${BOTTLECRM_ADMIN_EMAIL:-admin@countersign.local}

say() { echo "bottlecrm: $*"; }
die() { echo "bottlecrm: $*" >&2; exit 1; }
psql_admin() { psql -h "$pghost" -p "$pgport" -U "$pgadmin" -v ON_ERROR_STOP=1 -qtA "$@"; }

cmd_install() {
  local marker="$venv/.installed-$VERSION"
  if [ -f "$marker" ]; then say "installed ($VERSION) in $venv"; return; fi
  command -v "$python" >/dev/null || die "needs Python 3.12 ($python not found; set PYTHON)"
  mkdir -p "$home"
  [ -x "$venv/bin/pip" ] || "$python" -m venv "$venv"
  say "pip install django-crm==$VERSION (a few minutes the first time)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "django-crm==$VERSION" 'celery[redis]' gunicorn
  if ! "$venv/bin/python" -c "import weasyprint" 2>/dev/null; then
    local libs="libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libcairo2"
    [ "$(id -u)" = 0 ] || die "WeasyPrint cannot load its libraries; as root: apt-get install $libs"
    say "WeasyPrint cannot load its libraries: installing $libs from Debian"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $libs >/dev/null
    "$venv/bin/python" -c "import weasyprint" || die "WeasyPrint still cannot load its libraries"
  fi
  touch "$marker"
  say "installed django-crm $VERSION in $venv"
}

load_settings() {
  if [ ! -f "$secrets" ]; then
    mkdir -p "$home"
    umask 077
    {
      echo "SECRET_KEY=$("$python" -c 'import secrets; print(secrets.token_urlsafe(48))')"
      echo "DBPASSWORD=$("$python" -c 'import secrets; print(secrets.token_hex(16))')"
    } >"$secrets"
    umask 022
  fi
  set -a
  # shellcheck disable=SC1090
  . "$secrets"
  ENV_TYPE=dev
  DEBUG=True
  ALLOWED_HOSTS="127.0.0.1,localhost"
  DBNAME=$dbname DBUSER=$dbuser DBHOST=$pghost DBPORT=$pgport
  CELERY_BROKER_URL=$redis_url CELERY_RESULT_BACKEND=$redis_url
  CACHE_URL=$redis_url
  EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend
  DOMAIN_NAME="127.0.0.1:$port"
  FRONTEND_URL="http://127.0.0.1:$port"
  # BottleCRM's own settings, with an admin onto the demo organisation's contacts and cases added
  # (scripts/bottlecrm_admin): out of the box its admin shows none, behind its row-level security.
  DJANGO_SETTINGS_MODULE=bottlecrm_admin.settings
  PYTHONPATH="$repo/scripts"
  set +a
}

crm_admin() { (cd "$run" && "$venv/bin/django-admin" "$@"); }

cmd_setup() {
  [ -f "$venv/.installed-$VERSION" ] || die "not installed: run '$0 install' first"
  load_settings
  mkdir -p "$run"
  # A login role that owns its database and is not a superuser: superusers bypass BottleCRM's
  # row-level security.
  if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$dbuser'")" != 1 ]; then
    psql_admin -c "CREATE ROLE \"$dbuser\" LOGIN NOSUPERUSER PASSWORD '$DBPASSWORD'"
  else
    psql_admin -c "ALTER ROLE \"$dbuser\" LOGIN NOSUPERUSER PASSWORD '$DBPASSWORD'"
  fi
  if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$dbname'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE \"$dbname\" OWNER \"$dbuser\""
    rm -f "$home/.migrated-$VERSION-$dbname" "$home/.token-db"
  fi
  local migrated="$home/.migrated-$VERSION-$dbname"
  if [ ! -f "$migrated" ]; then
    say "migrating its database $dbname (253 migrations, a few minutes the first time)"
    crm_admin migrate --noinput >"$run/migrate.log" 2>&1 || { tail -30 "$run/migrate.log"; die "migrate failed"; }
    touch "$migrated"
  fi
  local token=""
  if [ -f "$envfile" ] && [ "$(cat "$home/.token-db" 2>/dev/null)" = "$dbname" ]; then
    token=$(sed -n 's/^BOTTLECRM_TOKEN=\(bcrm_pat_.*\)$/\1/p' "$envfile")
  fi
  if [ -n "$token" ]; then
    say "token already in $envfile"
  else
    say "creating an organisation and a personal access token"
    local started_here=""
    if ! ours_running; then cmd_start; started_here=1; fi
    token=$(cd "$run" && PATH="$venv/bin:$PATH" "$venv/bin/python" "$repo/scripts/bottlecrm_token.py" \
      --url "http://127.0.0.1:$port" --email "$admin_email") || die "could not create a token"
    if [ -n "$started_here" ] && [ "${1:-}" != keep ]; then cmd_stop; fi
  fi
  # Its database, as the role it owns it by (the same password as in $secrets, in a file only its
  # owner reads): the crash tests lock a contact's row there to hold BottleCRM's write of it.
  umask 077
  {
    echo "BOTTLECRM_URL=http://127.0.0.1:$port"
    echo "BOTTLECRM_TOKEN=$token"
    echo "BOTTLECRM_DATABASE_URL=postgres://$dbuser:$DBPASSWORD@$pghost:$pgport/$dbname"
  } >"$envfile"
  umask 022
  echo "$dbname" >"$home/.token-db"
  say "wrote BOTTLECRM_URL, BOTTLECRM_TOKEN and BOTTLECRM_DATABASE_URL to $envfile"
}

healthy() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz/" 2>/dev/null; }
ours_running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

cmd_start() {
  [ -f "$venv/.installed-$VERSION" ] || die "not installed: run '$0 install' first"
  load_settings
  mkdir -p "$run"
  if ours_running && healthy; then
    say "already running at http://127.0.0.1:$port (pid $(cat "$pidfile"))"
    return
  fi
  if ! ours_running && curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null; then
    die "something else already answers on port $port (another BottleCRM?): set BOTTLECRM_PORT to a free port"
  fi
  # --capture-output: the emails BottleCRM sends (to the console backend) land in gunicorn.log.
  (cd "$run" && "$venv/bin/gunicorn" crm.wsgi:application --bind "127.0.0.1:$port" --workers 2 \
    --timeout 60 --capture-output --daemon --pid "$pidfile" --access-logfile "$run/access.log" --error-logfile "$run/gunicorn.log")
  for _ in $(seq 120); do
    healthy && { say "running at http://127.0.0.1:$port (pid $(cat "$pidfile"))"; return; }
    sleep 0.5
  done
  tail -30 "$run/gunicorn.log" >&2 || true
  die "did not answer /healthz/ on port $port within 60 s"
}

# Its Celery worker: BottleCRM sends its emails (a case's status change emails the case's contact)
# from a task. The console email backend writes each one to $run/worker.log.
cmd_worker() {
  [ -f "$venv/.installed-$VERSION" ] || die "not installed: run '$0 install' first"
  load_settings
  mkdir -p "$run"
  if [ -f "$workerpid" ] && kill -0 "$(cat "$workerpid")" 2>/dev/null; then
    say "its worker is already running (pid $(cat "$workerpid"))"
    return
  fi
  (cd "$run" && "$venv/bin/celery" -A crm worker --detach --concurrency 1 --pidfile "$workerpid" \
    --logfile "$run/worker.log" --loglevel INFO)
  say "its worker is running: the emails it sends are written to $run/worker.log"
}

cmd_stop() {
  if [ -f "$workerpid" ]; then
    kill -TERM "$(cat "$workerpid")" 2>/dev/null || true
    rm -f "$workerpid"
  fi
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    rm -f "$pidfile"
    say "stopped"
  else
    say "not running"
  fi
}

cmd_admin() {
  [ -f "$home/.migrated-$VERSION-$dbname" ] || die "not set up: run '$0 setup' first"
  load_settings
  mkdir -p "$run"
  if ! grep -q '^ADMIN_PASSWORD=' "$secrets"; then
    echo "ADMIN_PASSWORD=$("$python" -c 'import secrets; print(secrets.token_urlsafe(12))')" >>"$secrets"
    load_settings
  fi
  # The wheel ships no front end of its own (BottleCRM's web app is a separate project): its Django
  # admin, with the demo organisation's rows and a page for cases (scripts/bottlecrm_admin), is the
  # screen a person can look at and edit a contact or a case in.
  crm_admin shell -c "
from django.contrib.auth import get_user_model
user = get_user_model().objects.get(email='$admin_email')
user.is_staff = user.is_superuser = True
user.set_password('$ADMIN_PASSWORD')
user.save()
" || die "could not make $admin_email an admin"
  echo "BottleCRM's screens: http://127.0.0.1:$port/admin/ (contacts: /admin/contacts/contact/, cases: /admin/cases/case/)"
  echo "sign in as $admin_email with the password $ADMIN_PASSWORD"
}

cmd_status() {
  if healthy; then say "answering at http://127.0.0.1:$port"; else say "not answering on port $port"; exit 1; fi
}

case "${1:-}" in
  install) cmd_install ;;
  setup) cmd_setup ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  up) cmd_install; cmd_setup keep; cmd_start ;;
  status) cmd_status ;;
  admin) cmd_admin ;;
  worker) cmd_worker ;;
  *) echo "usage: $0 install|setup|start|stop|up|status|admin|worker" >&2; exit 2 ;;
esac
