# Sourced by the ensure-*.sh scripts: the one way this project installs Debian
# packages. `ensure_debian_packages P...` installs those of P not installed yet
# (apt-get update once, and only when one is missing; sudo when not root).
ensure_debian_packages() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    ((${#missing[@]})) || return 0
    echo "== installing ${missing[*]}" >&2
    local as_root=()
    if [ "$(id -u)" != 0 ]; then as_root=(sudo); fi
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >&2
}
