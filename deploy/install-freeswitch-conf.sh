#!/usr/bin/env bash
# Install the gateway's FreeSWITCH configuration (freeswitch-conf/) and dialplan (dialplan/)
# into a FreeSWITCH configuration directory, with the Event Socket password in vars.xml.
#
#   install-freeswitch-conf.sh SOURCE_DIR CONF_DIR ESL_PASSWORD
#
# SOURCE_DIR is the repository, CONF_DIR normally /etc/freeswitch. Shipped files are written
# over; what only the site has is kept: vars.local.xml, directory/default/*.xml (users),
# dialplan/public/*.xml of its own, tls/. deploy/provision.sh calls this; so do the tests.
set -euo pipefail

die() {
    echo "install-freeswitch-conf: $*" >&2
    exit 1
}

[[ $# -eq 3 ]] || die "usage: $0 SOURCE_DIR CONF_DIR ESL_PASSWORD"
src=$1
dest=$2
password=$3

[[ -f "$src/freeswitch-conf/freeswitch.xml" && -f "$src/dialplan/public.xml" ]] ||
    die "$src does not hold freeswitch-conf/ and dialplan/"
# The password lands in an XML attribute and a sed replacement: keep it to safe characters.
[[ "$password" =~ ^[A-Za-z0-9._~-]{16,128}$ ]] ||
    die "the ESL password must be 16 to 128 characters from A-Z a-z 0-9 . _ ~ -"
[[ "$password" != "change-me-at-install" ]] || die "choose a real ESL password"

mkdir -p "$dest"
cp -R "$src/freeswitch-conf/." "$dest/"
while IFS= read -r -d '' file; do
    install -D -m 0644 "$src/dialplan/$file" "$dest/dialplan/$file"
done < <(cd "$src/dialplan" && find . -type f -name '*.xml' -print0)
mkdir -p "$dest/dialplan/public" "$dest/directory/default"

# The one place the password is set: esl_password in vars.xml.
tmp=$(mktemp "$dest/.vars.xml.XXXXXX")
trap 'rm -f "$tmp"' EXIT
sed -E "s|(data=\"esl_password=)[^\"]*\"|\\1${password}\"|" "$dest/vars.xml" >"$tmp"
grep -q "data=\"esl_password=${password}\"" "$tmp" || die "could not set esl_password in vars.xml"
chmod 0640 "$tmp"
mv "$tmp" "$dest/vars.xml"
trap - EXIT
