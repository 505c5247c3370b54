# Sourced first by the scripts that need root (network namespaces, tap
# devices, apt-get). As root it does nothing. As anyone else it runs the
# calling script again through sudo, keeping the caller's environment (the
# scripts take settings from it: KIT, RUNS, PATHS...), PATH and rustup
# home: a toolchain installed by rustup lives under the user's home, and
# sudo's reset PATH would not find it. HOME becomes root's and CARGO_HOME
# is dropped, so that cargo running as root leaves no root-owned files in
# the user's home. A fresh Debian machine often has no sudo: then it says
# to run the script as root.
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "$(basename "$0"): needs root (namespaces, tap devices, apt-get), and sudo is not installed: run it as root" >&2
        exit 1
    fi
    as_root_env=(HOME="$(getent passwd root | cut -d: -f6)" PATH="$PATH")
    as_root_rustup="${RUSTUP_HOME:-$HOME/.rustup}"
    [ -d "$as_root_rustup" ] && as_root_env+=(RUSTUP_HOME="$as_root_rustup")
    echo "$(basename "$0"): needs root: running it through sudo" >&2
    exec sudo --preserve-env env -u CARGO_HOME "${as_root_env[@]}" bash "$0" "$@"
fi
