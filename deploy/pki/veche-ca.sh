#!/bin/sh
# A region's private certificate authority for its nodes, gateway and SMS relay (docs/OPERATOR.md
# "TLS with a private CA"). Needs only openssl. Keep DIR/ca.key offline; give every machine DIR/ca.crt
# (its nodes' and the gateway's "ca_file", veche --ca-file, Prometheus' tls_config.ca_file).
#
#   veche-ca.sh init DIR                         make DIR/ca.key (0600) and DIR/ca.crt (10 years)
#   veche-ca.sh issue DIR NAME SAN [SAN ...]     make DIR/NAME.key (0600) and DIR/NAME.crt (2 years)
#                                                SAN: DNS:node0.budget.example.ru or IP:10.0.0.5
set -eu

usage() {
    sed -n '2,11p' "$0" >&2
    exit 2
}

[ $# -ge 2 ] || usage
command=$1
dir=$2
shift 2

case "$command" in
init)
    [ $# -eq 0 ] || usage
    mkdir -p "$dir"
    [ ! -e "$dir/ca.key" ] || { echo "$dir/ca.key exists; refusing to overwrite it" >&2; exit 1; }
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key")
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=Veche regional CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.crt"
    echo "$dir/ca.crt: give it to every machine; keep $dir/ca.key offline"
    ;;
issue)
    [ $# -ge 2 ] || usage
    name=$1
    shift
    sans=$(printf '%s,' "$@")
    sans=${sans%,}
    [ -e "$dir/ca.key" ] || { echo "no CA in $dir: run veche-ca.sh init $dir first" >&2; exit 1; }
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key")
    openssl req -new -key "$dir/$name.key" -subj "/CN=$name" -out "$dir/$name.csr"
    extensions=$(mktemp)
    trap 'rm -f "$extensions"' EXIT
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
        "$sans" > "$extensions"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -sha256 -days 730 -extfile "$extensions" -out "$dir/$name.crt"
    rm -f "$dir/$name.csr"
    echo "$dir/$name.crt and $dir/$name.key for $sans"
    ;;
*)
    usage
    ;;
esac
