#!/usr/bin/env bash
# Provision a Debian 12 host for the voice gateway. The Vagrantfile runs it as root; it can be
# run by hand on any Debian 12 machine, from a checkout of the repository:
#
#   sudo FS_TOKEN=<SignalWire personal access token> deploy/provision.sh
#
# It installs, idempotently:
#   1. FreeSWITCH 1.10 from its official package repository (access token: $FS_TOKEN, only ever
#      written to /etc/apt/auth.conf.d/freeswitch.conf, mode 600), with the modules we load;
#   2. mod_audio_stream, built from source against libfreeswitch-dev: the bidirectional build
#      (bot audio streamed straight into calls) by default, or the community build (bot audio
#      played as files) with MOD_AUDIO_STREAM_BUILD=community; the gateway's playback form
#      (GATEWAY_MEDIA_PLAYBACK: stream or files) follows;
#   3. our configuration (freeswitch-conf/) and dialplan (dialplan/) in /etc/freeswitch, with a
#      random Event Socket password;
#   4. the gateway in a virtualenv (/opt/voicegw/venv), its environment file
#      /etc/voicegw/voicegw.env (the same ESL password, and the key that encrypts the stored
#      webhook secrets and provider API keys) and the systemd unit voicegw.service;
#   5. optionally PostgreSQL (VOICEGW_POSTGRES=1), else SQLite in /var/lib/voicegw.
# Then it starts FreeSWITCH and the gateway and runs "voicegw doctor".
#
# Settings (environment):
#   FS_TOKEN                 SignalWire token for the FreeSWITCH repository (required once)
#   VOICEGW_SRC              the repository checkout (default: the directory above this script)
#   VOICEGW_POSTGRES=1       install PostgreSQL and use it (default: SQLite)
#   VOICEGW_HTTP             address of the gateway's HTTP API (default 0.0.0.0:8000)
#   ESL_PASSWORD             Event Socket password (default: kept from a previous run, or random)
#   MOD_AUDIO_STREAM_BUILD   bidirectional (default: cloudfieldcz/mod_audio_stream_fork) or
#                            community (amigniter/mod_audio_stream), each at the commit the
#                            gateway was tested with on a real FreeSWITCH (research/downlink.md)
#   MOD_AUDIO_STREAM_REPO    git URL of another build of that kind (default: the build's own)
#   MOD_AUDIO_STREAM_REF     commit or tag to build (default: the pinned commit)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${VOICEGW_SRC:-$(dirname "$SCRIPT_DIR")}
FS_TOKEN=${FS_TOKEN:-}
VOICEGW_POSTGRES=${VOICEGW_POSTGRES:-0}
VOICEGW_HTTP=${VOICEGW_HTTP:-0.0.0.0:8000}
MOD_AUDIO_STREAM_BUILD=${MOD_AUDIO_STREAM_BUILD:-bidirectional}
case "$MOD_AUDIO_STREAM_BUILD" in
    bidirectional)
        # Young, one author: pinned.  Its libwsc submodule resolves to 366fa04 at this commit.
        MOD_AUDIO_STREAM_REPO=${MOD_AUDIO_STREAM_REPO:-https://github.com/cloudfieldcz/mod_audio_stream_fork.git}
        MOD_AUDIO_STREAM_REF=${MOD_AUDIO_STREAM_REF:-fa2e5d2d9f86b375947a73709a2520ba6307f629}
        PLAYBACK_FORM=stream
        ;;
    community)
        MOD_AUDIO_STREAM_REPO=${MOD_AUDIO_STREAM_REPO:-https://github.com/amigniter/mod_audio_stream.git}
        MOD_AUDIO_STREAM_REF=${MOD_AUDIO_STREAM_REF:-ec2a781026a1c09b0c3a6161b8b896f0b9305922}
        PLAYBACK_FORM=files
        ;;
    *)
        printf 'provision: MOD_AUDIO_STREAM_BUILD must be bidirectional or community, not %s\n' \
            "$MOD_AUDIO_STREAM_BUILD" >&2
        exit 1
        ;;
esac

FS_REPO_HOST=freeswitch.signalwire.com
FS_REPO_URL=https://${FS_REPO_HOST}/repo/deb/debian-release
FS_KEYRING=/usr/share/keyrings/signalwire-freeswitch-repo.gpg
FS_CONF=/etc/freeswitch
FS_MOD_DIR=/usr/lib/freeswitch/mod
PREFIX=/opt/voicegw
ENV_DIR=/etc/voicegw
ENV_FILE=$ENV_DIR/voicegw.env
STATE_DIR=/var/lib/voicegw
BUILD_DIR=/usr/local/src/mod_audio_stream

FS_PACKAGES=(
    freeswitch
    freeswitch-systemd
    freeswitch-mod-console
    freeswitch-mod-logfile
    freeswitch-mod-event-socket
    freeswitch-mod-sofia
    freeswitch-mod-loopback
    freeswitch-mod-commands
    freeswitch-mod-dptools
    freeswitch-mod-dialplan-xml
    freeswitch-mod-sndfile
    freeswitch-mod-tone-stream
    freeswitch-mod-say-en
    freeswitch-mod-flite
)
BUILD_PACKAGES=(
    build-essential cmake git pkg-config
    libfreeswitch-dev libssl-dev zlib1g-dev libevent-dev libspeexdsp-dev
)

log() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'provision: %s\n' "$*" >&2
    exit 1
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

check_host() {
    [[ $EUID -eq 0 ]] || die "run as root"
    # shellcheck source=/dev/null
    . /etc/os-release
    [[ "${ID:-}" == debian && "${VERSION_CODENAME:-}" == bookworm ]] ||
        die "needs Debian 12 (bookworm), found ${PRETTY_NAME:-unknown}"
    [[ -f "$SRC/setup.cfg" && -f "$SRC/freeswitch-conf/freeswitch.xml" ]] ||
        die "no repository at $SRC (set VOICEGW_SRC)"
}

install_freeswitch_repository() {
    log "FreeSWITCH package repository"
    apt-get update -q
    apt_install ca-certificates curl gnupg openssl python3 python3-venv
    if [[ -s /etc/apt/auth.conf.d/freeswitch.conf && -s "$FS_KEYRING" && -z "$FS_TOKEN" ]]; then
        echo "already configured"
    else
        [[ -n "$FS_TOKEN" ]] ||
            die "set FS_TOKEN to a SignalWire personal access token (see docs/deploy.md)"
        install -d -m 0755 /etc/apt/auth.conf.d
        umask 077
        printf 'machine %s login signalwire password %s\n' "$FS_REPO_HOST" "$FS_TOKEN" \
            >/etc/apt/auth.conf.d/freeswitch.conf
        umask 022
        chmod 600 /etc/apt/auth.conf.d/freeswitch.conf
        curl --fail --silent --show-error --netrc-file /etc/apt/auth.conf.d/freeswitch.conf \
            --output "$FS_KEYRING.tmp" "$FS_REPO_URL/signalwire-freeswitch-repo.gpg"
        mv "$FS_KEYRING.tmp" "$FS_KEYRING"
        chmod 644 "$FS_KEYRING"
    fi
    printf 'deb [signed-by=%s] %s bookworm main\n' "$FS_KEYRING" "$FS_REPO_URL" \
        >/etc/apt/sources.list.d/freeswitch.list
    apt-get update -q
}

install_freeswitch() {
    log "FreeSWITCH and its modules"
    apt_install "${FS_PACKAGES[@]}"
}

build_mod_audio_stream() {
    log "mod_audio_stream, $MOD_AUDIO_STREAM_BUILD build ($MOD_AUDIO_STREAM_REF)"
    local stamp=$FS_MOD_DIR/.mod_audio_stream.ref
    local wanted="$MOD_AUDIO_STREAM_REPO $MOD_AUDIO_STREAM_REF"
    if [[ -f "$FS_MOD_DIR/mod_audio_stream.so" && "$(cat "$stamp" 2>/dev/null)" == "$wanted" ]]; then
        echo "already built"
        return
    fi
    apt_install "${BUILD_PACKAGES[@]}"
    if [[ -d "$BUILD_DIR/.git" && "$(git -C "$BUILD_DIR" remote get-url origin)" != "$MOD_AUDIO_STREAM_REPO" ]]; then
        rm -rf "$BUILD_DIR"  # another build was there
    fi
    if [[ ! -d "$BUILD_DIR/.git" ]]; then
        git clone --quiet "$MOD_AUDIO_STREAM_REPO" "$BUILD_DIR"
    fi
    git -C "$BUILD_DIR" fetch --quiet --tags origin
    git -C "$BUILD_DIR" checkout --quiet --force "$MOD_AUDIO_STREAM_REF"
    git -C "$BUILD_DIR" submodule update --init --recursive --quiet
    rm -rf "$BUILD_DIR/build"
    cmake -S "$BUILD_DIR" -B "$BUILD_DIR/build" -DCMAKE_BUILD_TYPE=Release -DUSE_TLS=ON
    if [[ "$MOD_AUDIO_STREAM_BUILD" == bidirectional ]]; then
        # The fork's "all" and install targets reference a debian/changelog it removed: build
        # the module target alone and install the library by hand.
        cmake --build "$BUILD_DIR/build" --parallel "$(nproc)" --target mod_audio_stream
        install -m 0644 "$(find "$BUILD_DIR/build" -name mod_audio_stream.so -print -quit)" "$FS_MOD_DIR/"
    else
        cmake --build "$BUILD_DIR/build" --parallel "$(nproc)"
        cmake --install "$BUILD_DIR/build"
    fi
    [[ -f "$FS_MOD_DIR/mod_audio_stream.so" ]] || die "mod_audio_stream.so not installed in $FS_MOD_DIR"
    # A loaded module cannot be swapped (unload/load): start_services restarts FreeSWITCH.
    printf '%s\n' "$wanted" >"$stamp"
}

# Reads KEY from the existing environment file (empty when absent).
env_value() {
    [[ -f "$ENV_FILE" ]] || return 0
    sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1
}

choose_secrets() {
    local nodes
    nodes=$(env_value FREESWITCH_NODES)
    if [[ -z "${ESL_PASSWORD:-}" ]]; then
        ESL_PASSWORD=${nodes##*:}
    fi
    if [[ -z "${ESL_PASSWORD:-}" ]]; then
        ESL_PASSWORD=$(openssl rand -hex 24)
    fi
    DATABASE_URL=$(env_value GATEWAY_DATABASE_URL)
    # Kept as it is (during a rotation it lists several keys); else a new Fernet key:
    # 32 random bytes in url-safe base64.
    SECRETS_KEY=$(env_value GATEWAY_SECRETS_KEY)
    if [[ -z "$SECRETS_KEY" ]]; then
        SECRETS_KEY=$(openssl rand -base64 32 | tr '+/' '-_')
    fi
}

install_freeswitch_config() {
    log "FreeSWITCH configuration and dialplan"
    # A configuration we did not install (e.g. FreeSWITCH's sample one) is kept aside, not mixed.
    if [[ -d "$FS_CONF" && ! -f "$FS_CONF/.voicegw" &&
        -n "$(find "$FS_CONF" -mindepth 1 -maxdepth 1 ! -name tls -print -quit)" ]]; then
        local backup
        backup=$FS_CONF.orig-$(date +%Y%m%d%H%M%S)
        echo "moving the existing configuration to $backup"
        mv "$FS_CONF" "$backup"
    fi
    bash "$SRC/deploy/install-freeswitch-conf.sh" "$SRC" "$FS_CONF" "$ESL_PASSWORD"
    touch "$FS_CONF/.voicegw"
    if [[ ! -f "$FS_CONF/vars.local.xml" ]]; then
        cat >"$FS_CONF/vars.local.xml" <<'XML'
<include>
  <!-- Site settings of this FreeSWITCH, read after vars.xml (so they win) and never overwritten
       by provisioning. Copy a set line from vars.xml here and change its value, e.g. the
       carrier (gateway_carrier, carrier_proxy, carrier_realm, carrier_register,
       carrier_username, carrier_password, carrier_cidr), external_ip behind NAT, or
       gateway_did_regex. Then: systemctl restart freeswitch. -->
</include>
XML
    fi
    chown -R freeswitch:freeswitch "$FS_CONF"
    chmod 0640 "$FS_CONF/vars.xml" "$FS_CONF/vars.local.xml"
}

install_postgres() {
    [[ "$VOICEGW_POSTGRES" == 1 ]] || return 0
    log "PostgreSQL"
    apt_install postgresql
    systemctl enable --now postgresql
    local password
    if [[ "$DATABASE_URL" == postgresql://voicegw:* ]]; then
        password=${DATABASE_URL#postgresql://voicegw:}
        password=${password%%@*}
    else
        password=$(openssl rand -hex 24)
    fi
    if [[ -z "$(runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'voicegw'")" ]]; then
        runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qc "CREATE ROLE voicegw LOGIN PASSWORD '$password'"
    else
        runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qc "ALTER ROLE voicegw PASSWORD '$password'"
    fi
    if [[ -z "$(runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'voicegw'")" ]]; then
        runuser -u postgres -- createdb --owner=voicegw voicegw
    fi
    DATABASE_URL="postgresql://voicegw:${password}@127.0.0.1:5432/voicegw"
}

install_gateway() {
    log "voice gateway in $PREFIX/venv"
    if ! getent passwd voicegw >/dev/null; then
        useradd --system --home-dir "$STATE_DIR" --shell /usr/sbin/nologin voicegw
    fi
    # Recordings are written by FreeSWITCH (group freeswitch, umask 007); the gateway reads them.
    usermod -a -G freeswitch voicegw
    install -d -o voicegw -g voicegw -m 0750 "$STATE_DIR"
    install -d -m 0755 "$PREFIX"
    if [[ ! -x "$PREFIX/venv/bin/python" ]]; then
        python3 -m venv "$PREFIX/venv"
    fi
    "$PREFIX/venv/bin/pip" install --quiet --upgrade pip
    "$PREFIX/venv/bin/pip" install --quiet "$SRC"
    install -d -m 0755 "$PREFIX/docs"
    install -m 0644 "$SRC/docs/deploy.md" "$PREFIX/docs/deploy.md"
}

write_environment() {
    log "environment file $ENV_FILE"
    if [[ -z "$DATABASE_URL" ]]; then
        DATABASE_URL="sqlite:///$STATE_DIR/voicegw.db"
    fi
    install -d -m 0750 -o root -g voicegw "$ENV_DIR"
    local tmp
    tmp=$(mktemp "$ENV_DIR/.voicegw.env.XXXXXX")
    cat >"$tmp" <<ENV
# Written by deploy/provision.sh; the ESL password is the esl_password of $FS_CONF/vars.xml.
GATEWAY_DATABASE_URL=$DATABASE_URL
GATEWAY_HTTP=$VOICEGW_HTTP
FREESWITCH_NODES=127.0.0.1:8021:$ESL_PASSWORD
GATEWAY_SECRETS_KEY=$SECRETS_KEY
# How bot audio is played: what this node's mod_audio_stream build can do ($MOD_AUDIO_STREAM_BUILD).
GATEWAY_MEDIA_PLAYBACK=$PLAYBACK_FORM
ENV
    chown root:voicegw "$tmp"
    chmod 0640 "$tmp"
    mv "$tmp" "$ENV_FILE"
}

# Client-side copies of the ESL password, readable by root only: fs_cli's own configuration,
# and a "voicegw" command that runs the gateway's CLI as the service does (its user, its
# environment file), so that "sudo voicegw doctor" works.
install_admin_tools() {
    log "admin tools: /etc/fs_cli.conf, /usr/local/bin/voicegw"
    umask 077
    printf '[default]\nhost => 127.0.0.1\nport => 8021\npassword => %s\n' "$ESL_PASSWORD" >/etc/fs_cli.conf
    umask 022
    chmod 600 /etc/fs_cli.conf
    cat >/usr/local/bin/voicegw <<SH
#!/bin/sh
# The gateway's CLI with the service's user and environment (installed by deploy/provision.sh).
set -e
[ "\$(id -u)" -eq 0 ] || { echo "run it with sudo" >&2; exit 1; }
set -a
. $ENV_FILE
set +a
cd $STATE_DIR
exec runuser -u voicegw -- $PREFIX/venv/bin/voicegw "\$@"
SH
    chmod 755 /usr/local/bin/voicegw
}

install_units() {
    log "systemd units"
    install -m 0644 "$SRC/deploy/systemd/voicegw.service" /etc/systemd/system/voicegw.service
    systemctl daemon-reload
    systemctl enable freeswitch.service voicegw.service
}

start_services() {
    log "starting FreeSWITCH"
    systemctl restart freeswitch.service
    local tries=0
    until fs_cli -x status >/dev/null 2>&1; do
        tries=$((tries + 1))
        [[ $tries -lt 60 ]] || die "FreeSWITCH's Event Socket did not come up (see /var/log/freeswitch)"
        sleep 1
    done
    local module missing=()
    for module in mod_event_socket mod_sofia mod_dialplan_xml mod_flite mod_audio_stream; do
        [[ "$(fs_cli -x "module_exists $module")" == true ]] || missing+=("$module")
    done
    [[ ${#missing[@]} -eq 0 ]] || die "FreeSWITCH did not load: ${missing[*]}"

    log "database migrations"
    /usr/local/bin/voicegw migrate

    log "starting the gateway"
    systemctl restart voicegw.service
}

check_install() {
    log "voicegw doctor"
    if ! /usr/local/bin/voicegw doctor; then
        echo "voicegw doctor reported problems: see above, journalctl -u voicegw and /var/log/freeswitch" >&2
        return 1
    fi
}

main() {
    check_host
    install_freeswitch_repository
    install_freeswitch
    build_mod_audio_stream
    choose_secrets
    install_freeswitch_config
    install_postgres
    install_gateway
    write_environment
    install_admin_tools
    install_units
    start_services
    check_install
    log "done: the API listens on $VOICEGW_HTTP"
}

main "$@"
